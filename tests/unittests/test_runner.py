"""The fold runner's plan: preparation, order, override routing, errors.

A stand-in launcher runs a fake step that reads its command line with
SpeechBrain's own parser, resolves its YAML with those overrides, records
what it received and writes the files a real step would (the encoder, or
predictions with known values), so the runner's logic is checked without
training anything.
"""

import csv
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from speechbrain_sercl import cli, layout
from speechbrain_sercl.cli import main
from speechbrain_sercl.config import shipped_hparams
from speechbrain_sercl.data import manifest as manifest_module
from speechbrain_sercl.data.iemocap import utterance_speaker
from speechbrain_sercl.data.synthetic import generate_synthetic_corpora
from speechbrain_sercl.method import sources
from speechbrain_sercl.method.tiny import PRETRAINED_TINY_SIZE
from speechbrain_sercl.predictions import write_predictions
from speechbrain_sercl.protocol import cross_corpus
from speechbrain_sercl.protocol.overrides import parse_arguments
from speechbrain_sercl.reporting.report import write_report
from speechbrain_sercl.reporting.results import collect_results, write_results

FAKE_STEP = textwrap.dedent(
    """
    import json, os, sys
    import ruamel.yaml
    import speechbrain as sb
    from speechbrain_sercl import layout
    from speechbrain_sercl.predictions import write_predictions
    from speechbrain_sercl.config import read_config

    script, *argv = sys.argv[1:]
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    given = ruamel.yaml.YAML(typ="safe").load(overrides) or {}
    config = read_config(hparams_file, overrides)
    method = os.path.basename(hparams_file)[: -len(".yaml")]
    prepared = config["prepared_folder"]
    record = {
        "script": os.path.basename(script),
        "method": method,
        "values": {key: config[key] for key in given},
        "device": run_opts.device,
        "prepared_before": sorted(os.listdir(prepared)),
    }
    with open(os.environ["STEP_LOG"], "a") as log:
        log.write(json.dumps(record) + "\\n")
    if os.environ.get("FAIL_METHOD") == method:
        raise ValueError("boom in " + method)
    args = [config["experiment_folder"], config["protocol"], config["run"]]
    if script.endswith("train_contrastive.py"):
        encoder = layout.encoder_folder(*args)
        os.makedirs(encoder, exist_ok=True)
        for path in layout.encoder_files(encoder).values():
            with open(path, "w") as out:
                out.write(config["ssl_source"])
    elif config["run"] == layout.FINAL_RUN:
        output = layout.step_folder(*args, method, config["corpus"])
        os.makedirs(output, exist_ok=True)
        with open(layout.finished_file(output, config["run"]), "w") as out:
            json.dump({}, out)
    else:
        output = layout.step_folder(*args, method, config["corpus"])
        os.makedirs(output, exist_ok=True)
        # Fold f: 1 + f of the 2 utterances (all of class a) right, so
        # UA = recall of a = (1 + f) / 2.
        fold = config["run"]
        rows = [
            {"id": f"u{i}", "corpus": config["corpus"], "speaker": "s",
             "emotion": "a", "predicted": "a" if i <= fold else "b",
             "probabilities": [1.0, 0.0] if i <= fold else [0.0, 1.0]}
            for i in range(2)
        ]
        write_predictions(
            os.path.join(output, layout.PREDICTIONS_FILE), ["a", "b"], rows
        )
        with open(os.path.join(output, layout.TEST_REPORT_FILE), "w") as out:
            json.dump({}, out)
    """
)


@pytest.fixture
def fake_launcher(tmp_path, monkeypatch):
    script = tmp_path / "fake_step.py"
    script.write_text(FAKE_STEP)
    log = tmp_path / "steps.jsonl"
    monkeypatch.setenv("STEP_LOG", str(log))
    monkeypatch.chdir(tmp_path)
    return f"{sys.executable} {script}", log


def read_steps(log):
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


# A step that writes what a finished step writes, and nothing else, without
# importing SpeechBrain (milliseconds): for the checks of step records.
LIGHT_STEP = textwrap.dedent(
    """
    import json, os, sys
    from speechbrain_sercl import layout

    script, hparams, *items = sys.argv[1:]
    given = dict(item[2:].split("=", 1) for item in items if "=" in item)
    method = os.path.basename(hparams)[: -len(".yaml")]
    key = "run" if "run" in given else "fold"  # a YAML of version 0.1
    fold = given[key]
    fold = fold if fold == layout.FINAL_RUN else int(fold)
    with open(os.environ["STEP_LOG"], "a") as log:
        log.write(json.dumps({"method": method, "run": fold, "key": key}))
        log.write("\\n")
    if os.environ.get("FAIL_METHOD") == method:
        raise ValueError("boom in " + method)
    args = [given["experiment_folder"], given.get("protocol", "paper"), fold]
    if script.endswith("train_contrastive.py"):
        encoder = layout.encoder_folder(*args)
        os.makedirs(encoder, exist_ok=True)
        for path in layout.encoder_files(encoder).values():
            with open(path, "w") as out:
                out.write("weights")
        sys.exit()
    output = layout.step_folder(*args, method, given["corpus"])
    os.makedirs(output, exist_ok=True)
    if fold == layout.FINAL_RUN:
        with open(os.path.join(output, layout.TRAINED_FILE), "w") as out:
            json.dump({}, out)
    else:
        with open(os.path.join(output, layout.PREDICTIONS_FILE), "w") as out:
            out.write("id,corpus,speaker,emotion,predicted,p_a,p_b\\n")
            out.write(f"u0,{given['corpus']},s,a,a,1.0,0.0\\n")
        with open(os.path.join(output, layout.TEST_REPORT_FILE), "w") as out:
            json.dump({"UA": 1.0}, out)
    """
)


@pytest.fixture(scope="module")
def synthetic_release(tmp_path_factory):
    """The demo's synthetic corpora at 2 utterances per speaker and emotion
    (what ``demo`` below generates), generated once."""
    root = tmp_path_factory.mktemp("release")
    generate_synthetic_corpora(
        root, seed=0, utterances_per_speaker_emotion=2, progress=False
    )
    return root


def results_only(protocol_folder, fold, check=None, **options):
    """``write_report`` without its figures (seconds per run)."""
    results = collect_results(protocol_folder, check.accepted)
    write_results(results, protocol_folder, check.excluded)


@pytest.fixture
def light_launcher(tmp_path, monkeypatch, synthetic_release):
    """Light steps on a copy of the synthetic release; reports without
    figures (a test of the report puts ``write_report`` back)."""
    shutil.copytree(synthetic_release, tmp_path / "data")
    monkeypatch.setattr(cli, "write_report", results_only)
    script = tmp_path / "light_step.py"
    script.write_text(LIGHT_STEP)
    log = tmp_path / "steps.jsonl"
    monkeypatch.setenv("STEP_LOG", str(log))
    monkeypatch.chdir(tmp_path)
    return f"{sys.executable} {script}", log


def demo(experiment, launcher, *extra, methods=("classifier", "finetune")):
    """``sercl folds demo`` arguments on small synthetic corpora (the fake
    steps train no model, so nothing is tested across corpora)."""
    return [
        "folds",
        "demo",
        "--no-cross-corpus",
        "--launcher",
        launcher,
        f"--experiment_folder={experiment}",
        f"--demo_data_folder={experiment.parent / 'data'}",
        "--data_utterances_per_emotion=2",
        "--methods",
        *methods,
        *extra,
    ]


STEP_ORDER = [
    ("train_contrastive.py", "demo"),
    ("train_classifier.py", "classifier"),
    ("train_classifier.py", "finetune"),
    ("train_classifier.py", "classifier"),
    ("train_classifier.py", "finetune"),
]


def test_runner_order_shared_settings_and_results(
    fake_launcher, tmp_path, capsys
):
    launcher, log = fake_launcher
    experiment = tmp_path / "experiment"
    arguments = demo(
        experiment,
        launcher,
        "--runs",
        "0",
        "1",
        "--device=cpu",
        methods=("classifier", "finetune", "classical"),
    )
    assert main(arguments) == 0
    steps = read_steps(log)
    assert [(s["script"], s["method"]) for s in steps] == STEP_ORDER * 2
    for index, step in enumerate(steps):
        values = step["values"]
        assert values["run"] == index // 5
        assert step["device"] == "cpu"  # run options reach every step
        # Every corpus was prepared before the first step ran.
        assert [name.split("-")[0] for name in step["prepared_before"]] == [
            "casia",
            "iemocap",
        ]
        if step["script"] == "train_classifier.py":
            # The stage-1 YAML's experiment settings and corpus reach it.
            assert values["ssl_source"] == "tiny-wavlm-pretrained"
            assert values["hidden_size"] == PRETRAINED_TINY_SIZE["hidden_size"]
            assert values["experiment_folder"] == str(experiment)
            assert values["corpus"] in ("iemocap", "casia")
            assert values["reader"] == f"synthetic_{values['corpus']}"
            assert values["reader_options"] == {
                "seed": 0,
                "utterances_per_speaker_emotion": 2,
            }
            # method_overrides: stage 2, or FT.
            assert (values["number_of_epochs"], values["lr_milestones"]) in (
                (60, [45]),
                (10, [8]),
            )
    assert [s["values"]["corpus"] for s in steps[1:5]] == [
        "iemocap",
        "iemocap",
        "casia",
        "casia",
    ]

    results = json.loads((experiment / "paper" / "results.json").read_text())
    ua = results["iemocap"]["classifier"]
    assert ua["mean"]["UA"] == pytest.approx(0.75)  # folds: 0.5 and 1.0
    assert ua["std"]["UA"] == pytest.approx(0.25)
    assert "75.00 ± 25.00" in capsys.readouterr().out
    # The classical floor ran in the runner, on the same folds.
    prepared = experiment / "prepared"
    for corpus in ("iemocap", "casia"):
        assert sorted(results[corpus]["classical"]["folds"]) == ["0", "1"]
        (folds_file,) = prepared.glob(f"{corpus}-*/folds_paper.json")
        assignment = json.loads(folds_file.read_text())["assignment"]
        for fold in (0, 1):
            step = experiment / "paper" / f"fold_{fold}" / corpus / "classical"
            with open(step / layout.PREDICTIONS_FILE, newline="") as table:
                ids = sorted(row["id"] for row in csv.DictReader(table))
            assert ids == sorted(u for u, f in assignment.items() if f == fold)

    # A rerun finds every step done and runs nothing.
    assert main(arguments) == 0
    assert len(read_steps(log)) == len(steps)


def test_overrides_reach_every_declaring_step_or_one_method(
    fake_launcher, tmp_path
):
    launcher, log = fake_launcher
    model = str(tmp_path / "local model")
    arguments = demo(
        tmp_path / "experiment",
        launcher,
        "--runs",
        "0",
        f"--ssl_source={model}",
        "--finetune.lr=2.5e-4",
        "--contrastive.batches_per_epoch=null",
        "--test_max_seconds=[1, 2.5]",
        "--classifier.crop_seconds",
        "1.5",
    )
    assert main(arguments) == 0
    by_method = {}
    for step in read_steps(log):
        by_method.setdefault(step["method"], []).append(step["values"])
    stage1, classifier, finetune = (
        by_method["demo"][0],
        by_method["classifier"],
        by_method["finetune"],
    )
    assert stage1["ssl_source"] == model
    assert stage1["batches_per_epoch"] is None
    assert "lr" not in stage1 and "test_max_seconds" not in stage1
    for values in classifier + finetune:
        assert values["ssl_source"] == model
        assert values["test_max_seconds"] == [1, 2.5]
    for values in finetune:
        assert values["lr"] == 0.00025 and isinstance(values["lr"], float)
        assert values["crop_seconds"] == 2.0  # the demo's method_overrides
    for values in classifier:
        assert values["lr"] == 0.005  # the demo's method_overrides
        assert values["crop_seconds"] == 1.5


@pytest.mark.parametrize(
    "override, message",
    [
        ("--no_such_key=1", "no step declares no_such_key; valid keys: "),
        ("--classifier.no_such=1", "--classifier.no_such: not a key of"),
        ("--fold=1", "fold: set by the fold runner"),
        ("--classifier.output_folder=x", "output_folder: set by the fold"),
        ("--train.lr=1", "'train' is not a method"),
        ("--classifier.corpora={}", "derived from the stage-1 YAML's corpora"),
        ("--lr", "--lr needs a value"),
    ],
)
def test_bad_overrides_are_refused_before_any_step(
    fake_launcher, tmp_path, capsys, override, message
):
    launcher, log = fake_launcher
    experiment = tmp_path / "experiment"
    assert main(demo(experiment, launcher, override)) == 1
    error = capsys.readouterr().err
    assert message in error
    assert error.count("\n") == 1  # one line, no traceback
    assert read_steps(log) == []
    assert not experiment.exists()


def test_a_failed_step_is_one_line_naming_it_and_its_log(
    light_launcher, tmp_path, capsys, monkeypatch
):
    launcher, log = light_launcher
    monkeypatch.setenv("FAIL_METHOD", "finetune")
    experiment = tmp_path / "experiment"
    assert main(demo(experiment, launcher, "--runs", "0")) == 1
    stderr = capsys.readouterr().err
    error = stderr.strip().splitlines()[-1]
    step_folder = experiment / "paper" / "fold_0" / "iemocap" / "finetune"
    step_log = step_folder / layout.STEP_LOG_FILE
    assert "Traceback" not in stderr and stderr.count("sercl folds") == 1
    assert error.startswith("sercl folds: error: step finetune")
    assert "ValueError: boom in finetune" in error
    assert str(step_log) in error
    assert "ValueError: boom in finetune" in step_log.read_text()
    # Nothing after the failed step ran.
    assert [s["method"] for s in read_steps(log)] == [
        "demo",
        "classifier",
        "finetune",
    ]


def test_corpora_are_prepared_once_for_every_seed_and_model(
    fake_launcher, tmp_path, monkeypatch
):
    launcher, log = fake_launcher
    reads = []
    real_validate = manifest_module.validate_audio
    monkeypatch.setattr(
        manifest_module,
        "validate_audio",
        lambda path, *a, **k: reads.append(path) or real_validate(path),
    )
    shared = f"--prepared_folder={tmp_path / 'prepared'}"
    first = demo(tmp_path / "first", launcher, shared, "--runs", "0")
    assert main(first) == 0
    audio_files = len(reads)
    assert audio_files == 10 * 4 * 2 + 4 * 6 * 2  # every utterance, once
    second = demo(
        tmp_path / "second",
        launcher,
        shared,
        "--runs",
        "1",
        "--seed=7",
        "--ssl_source=tiny-hubert",
    )
    second[5] = f"--demo_data_folder={tmp_path / 'data'}"
    assert main(second) == 0
    assert len(reads) == audio_files  # nothing read again
    folds = sorted(Path(tmp_path / "prepared").glob("*/folds_paper.json"))
    assert len(folds) == 2


def test_speaker_protocol_tests_each_fold_of_a_corpus_once(
    fake_launcher, tmp_path
):
    """5 IEMOCAP-like sessions, 4 CASIA-like speakers: 5 runs, but CASIA's
    fold 0 is not tested again in run 4 (it would weigh double)."""
    launcher, log = fake_launcher
    experiment = tmp_path / "experiment"
    arguments = demo(
        experiment, launcher, "--protocol=speaker", methods=("classifier",)
    )
    assert main(arguments) == 0
    tested = {}
    for step in read_steps(log):
        if step["script"] == "train_classifier.py":
            values = step["values"]
            key = (values["corpus"], step["method"])
            tested.setdefault(key, []).append(values["run"])
    assert tested == {
        ("iemocap", "classifier"): [0, 1, 2, 3, 4],
        ("casia", "classifier"): [0, 1, 2, 3],
    }
    stage1_runs = [
        s["values"]["run"] for s in read_steps(log) if s["method"] == "demo"
    ]
    assert stage1_runs == [0, 1, 2, 3, 4]
    results = json.loads((experiment / "speaker" / "results.json").read_text())
    assert sorted(results["casia"]["classifier"]["folds"]) == [
        "0",
        "1",
        "2",
        "3",
    ]
    assert len(results["iemocap"]["classifier"]["folds"]) == 5


def test_sessions_protocol_holds_out_iemocap_sessions_and_casia_strata(
    fake_launcher, tmp_path
):
    """The common reading of the paper's 5 parts: IEMOCAP by session,
    CASIA stratified 5-fold, in one experiment."""
    launcher, log = fake_launcher
    experiment = tmp_path / "experiment"
    arguments = demo(
        experiment, launcher, "--protocol=sessions", methods=("classical",)
    )
    assert main(arguments) == 0
    assert read_steps(log) == []  # the floor alone needs no recipe step
    prepared = experiment / "prepared"
    (iemocap,) = prepared.glob("iemocap-*/manifest.json")
    (casia,) = prepared.glob("casia-*/manifest.json")
    assert not list(iemocap.parent.glob("folds_paper.json"))
    assert not list(casia.parent.glob("folds_speaker.json"))
    iemocap_manifest = json.loads(iemocap.read_text())
    casia_manifest = json.loads(casia.read_text())
    sessions = sorted({e["session"] for e in iemocap_manifest.values()})
    casia_folds = []
    for fold in range(5):
        run = experiment / "sessions" / f"fold_{fold}"
        with open(run / "iemocap" / "classical" / "predictions.csv") as table:
            tested = {row["id"] for row in csv.DictReader(table)}
        held_out = {iemocap_manifest[utt]["session"] for utt in tested}
        assert held_out == {sessions[fold]}  # one whole session
        with open(run / "casia" / "classical" / "predictions.csv") as table:
            casia_rows = list(csv.DictReader(table))
        # Stratified: every emotion in each CASIA fold.
        assert {row["emotion"] for row in casia_rows} == {
            e["emotion"] for e in casia_manifest.values()
        }
        casia_folds.append({row["id"] for row in casia_rows})
    assert sorted(set().union(*casia_folds)) == sorted(casia_manifest)
    assert sum(map(len, casia_folds)) == len(casia_manifest)


def test_runner_resumes_after_a_failed_step(light_launcher, tmp_path):
    launcher, log = light_launcher
    experiment = tmp_path / "experiment"
    arguments = demo(experiment, launcher, "--runs", "0")
    os.environ["FAIL_METHOD"] = "finetune"
    try:
        assert main(arguments) == 1
    finally:
        del os.environ["FAIL_METHOD"]
    assert main(arguments) == 0
    methods = [step["method"] for step in read_steps(log)]
    assert methods == [
        "demo",
        "classifier",
        "finetune",  # failed
        "finetune",  # rerun: stage 1 and stage 2 of iemocap were done
        "classifier",
        "finetune",
    ]


def test_the_final_run_trains_every_corpus_and_leaves_the_folds_be(
    fake_launcher, tmp_path, capsys
):
    launcher, log = fake_launcher
    experiment = tmp_path / "experiment"
    assert main(demo(experiment, launcher, "--runs", "0")) == 0
    results = experiment / "paper" / "results.json"
    before = results.read_bytes()
    protocol_steps = len(read_steps(log))
    capsys.readouterr()

    methods = ("classifier", "finetune", "classical")  # no floor to train
    assert main(demo(experiment, launcher, "--final", methods=methods)) == 0
    steps = read_steps(log)[protocol_steps:]
    assert [(s["method"], s["values"].get("corpus")) for s in steps] == [
        ("demo", None),
        ("classifier", "iemocap"),
        ("finetune", "iemocap"),
        ("classifier", "casia"),
        ("finetune", "casia"),
    ]
    assert all(s["values"]["run"] == "final" for s in steps)
    final = experiment / "paper" / "final"
    assert (final / "contrastive" / "encoder" / layout.ENCODER_FILE).exists()
    for corpus in ("iemocap", "casia"):
        assert sorted(os.listdir(final / corpus)) == ["classifier", "finetune"]
    out = capsys.readouterr().out
    assert f"{final / 'casia' / 'finetune'}" in out
    assert "No cross-validated results" not in out  # results.json exists
    # The protocol's results are left as they were, and stay so.
    assert results.read_bytes() == before
    assert main(demo(experiment, launcher, "--runs", "0")) == 0
    assert results.read_bytes() == before
    # Every step found done: nothing runs again.
    assert main(demo(experiment, launcher, "--final")) == 0
    assert len(read_steps(log)) == protocol_steps + len(steps)


def test_a_failed_final_run_resumes_where_it_stopped(
    light_launcher, tmp_path, monkeypatch, capsys
):
    launcher, log = light_launcher
    experiment = tmp_path / "experiment"
    monkeypatch.setenv("FAIL_METHOD", "finetune")
    assert main(demo(experiment, launcher, "--final")) == 1
    assert "step finetune" in capsys.readouterr().err
    monkeypatch.delenv("FAIL_METHOD")
    assert main(demo(experiment, launcher, "--final")) == 0
    assert "No cross-validated results" in capsys.readouterr().out
    assert [s["method"] for s in read_steps(log)] == [
        "demo",
        "classifier",
        "finetune",  # failed
        "finetune",  # rerun: stage 1 and stage 2 of iemocap were done
        "classifier",
        "finetune",
    ]
    assert not (experiment / "paper" / "results.json").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--runs", "0"), "--final and --runs exclude each other"),
        (("--methods", "classical"), "the classical floor has no final run"),
    ],
)
def test_final_runs_that_cannot_be_are_refused(
    fake_launcher, tmp_path, capsys, extra, message
):
    launcher, log = fake_launcher
    arguments = demo(tmp_path / "e", launcher, "--final", *extra)
    assert main(arguments) == 1
    assert message in capsys.readouterr().err
    assert read_steps(log) == []


def test_runs_beyond_the_protocol_are_refused(fake_launcher, tmp_path, capsys):
    launcher, log = fake_launcher
    assert main(demo(tmp_path / "e", launcher, "--runs", "5")) == 1
    assert "runs [5] do not exist" in capsys.readouterr().err
    assert read_steps(log) == []


def test_parse_arguments_keeps_run_options_apart():
    parsed = parse_arguments(
        ["--device=cuda:0", "--debug", "--fold", "2"], ["finetune"]
    )
    assert parsed.run_options == ["--device=cuda:0", "--debug"]
    assert parsed.overrides == {"fold": 2}


def remove_speaker(data, speaker):
    """Delete a speaker's wav files from the IEMOCAP-like release."""
    release = data / "IEMOCAP_full_release"
    for wav in release.glob("Session*/sentences/wav/*/*.wav"):
        if utterance_speaker(wav.stem) == speaker:
            wav.unlink()


def manifest_of(experiment, corpus):
    (path,) = (experiment / "prepared").glob(f"{corpus}-*/manifest.json")
    return json.loads(path.read_text())


def one_error_line(capsys):
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    return error


def test_a_release_that_lost_a_speaker_stops_the_run_naming_the_step(
    light_launcher, tmp_path, capsys
):
    """The issue's reproduction: remove a speaker's files and rerun."""
    launcher, log = light_launcher
    experiment = tmp_path / "experiment"
    methods = ("classifier", "finetune", "classical")
    arguments = demo(experiment, launcher, "--runs", "0", methods=methods)
    assert main(arguments) == 0
    ran = len(read_steps(log))
    removed = sorted(
        utt
        for utt, entry in manifest_of(experiment, "iemocap").items()
        if entry["speaker"] == "Ses01F"
    )
    remove_speaker(tmp_path / "data", "Ses01F")
    capsys.readouterr()

    assert main(arguments) == 1
    stage1 = experiment / "paper" / "fold_0" / "contrastive"
    assert one_error_line(capsys) == (
        f"sercl folds: error: {stage1}: made from other data or settings "
        f"than now: iemocap manifest: {len(removed)} utterances removed "
        "(speaker Ses01F); test ids changed. Rerun with --retrain-changed "
        "to train it again (its old folder is deleted once the new one is "
        "done)\n"
    )
    assert len(read_steps(log)) == ran  # nothing ran
    # The corpus was prepared again; its old folds are kept by their hash.
    (prepared,) = (experiment / "prepared").glob("iemocap-*")
    assert len(list(prepared.glob("folds_paper.*.json"))) == 1
    assert not set(removed) & set(manifest_of(experiment, "iemocap"))

    assert main([*arguments, "--retrain-changed"]) == 0
    # Run 0 again but casia's FT, made from the same casia data (its
    # stage 2 starts from stage 1, made from both corpora).
    steps = read_steps(log)[ran:]
    assert [step["method"] for step in steps] == [
        "demo",
        "classifier",
        "finetune",
        "classifier",
    ]
    run = experiment / "paper" / "fold_0"
    with open(run / "iemocap" / "classical" / layout.PREDICTIONS_FILE) as csv_:
        tested = {row["id"] for row in csv.DictReader(csv_)}
    assert tested and not tested & set(removed)
    (folds_file,) = prepared.glob("folds_paper.json")
    assignment = json.loads(folds_file.read_text())["assignment"]
    assert tested == {utt for utt, fold in assignment.items() if fold == 0}
    assert not (experiment / "paper" / "replaced").exists()


def test_changed_settings_stop_the_run_naming_them(
    light_launcher, tmp_path, capsys
):
    launcher, log = light_launcher
    experiment = tmp_path / "experiment"
    arguments = demo(experiment, launcher, "--runs", "0")
    assert main(arguments) == 0
    ran = len(read_steps(log))
    # Where things are, and the device, change no result.
    neutral = ["--device=cpu", "--prepared_folder=elsewhere"]
    assert main([*arguments, *neutral]) == 0
    assert len(read_steps(log)) == ran
    capsys.readouterr()
    for extra, changed, message, rerun in [
        (
            "--contrastive.lr=0.003",
            "contrastive",
            "lr 0.001 -> 0.003, lr_schedule changed, opt_class changed",
            ["demo", "classifier", "classifier"],  # stage 2 starts from it
        ),
        (
            "--finetune.lr=0.004",
            "iemocap/finetune",
            "lr 0.002 -> 0.004, lr_schedule changed, opt_class changed",
            ["finetune", "finetune"],
        ),
        (
            "--precision=bf16",
            "contrastive",
            'run_options [] -> ["--precision=bf16"]',
            ["demo", "classifier", "finetune", "classifier", "finetune"],
        ),
    ]:
        arguments.append(extra)
        assert main(arguments) == 1
        step = experiment / "paper" / "fold_0" / changed
        assert one_error_line(capsys).startswith(
            f"sercl folds: error: {step}: made from other data or settings "
            f"than now: settings: {message}. Rerun with --retrain-changed"
        )
        assert len(read_steps(log)) == ran
        assert main([*arguments, "--retrain-changed"]) == 0
        assert [step["method"] for step in read_steps(log)[ran:]] == rerun
        ran += len(rerun)
        capsys.readouterr()
    # Once trained again, the steps are done with these settings.
    assert main(arguments) == 0
    assert len(read_steps(log)) == ran


def test_other_weights_behind_the_same_source_stop_the_run(
    light_launcher, tmp_path, capsys, monkeypatch
):
    """A model folder is named by its files' digest, a pretrained tiny
    model by its pretraining version: new weights under the same
    ``ssl_source`` make the steps changed."""
    launcher, log = light_launcher
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (folder / name).write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights")
    experiment = tmp_path / "experiment"
    arguments = demo(experiment, launcher, "--runs", "0")
    assert main([*arguments, f"--ssl_source={folder}"]) == 0
    ran = len(read_steps(log))
    (folder / "model.safetensors").write_bytes(b"weightz")
    capsys.readouterr()
    assert main([*arguments, f"--ssl_source={folder}"]) == 1
    step = experiment / "paper" / "fold_0" / "contrastive"
    assert one_error_line(capsys).startswith(
        f"sercl folds: error: {step}: made from other data or settings than "
        "now: settings: speech_model changed. Rerun with --retrain-changed"
    )
    assert len(read_steps(log)) == ran
    # The shipped demo's model, pretrained by another version.
    arguments = demo(tmp_path / "shipped", launcher, "--runs", "0")
    assert main(arguments) == 0
    ran = len(read_steps(log))
    monkeypatch.setattr(sources, "PRETRAINING_VERSION", 2)
    capsys.readouterr()
    assert main(arguments) == 1
    step = tmp_path / "shipped" / "paper" / "fold_0" / "contrastive"
    assert one_error_line(capsys).startswith(
        f"sercl folds: error: {step}: made from other data or settings than "
        'now: settings: speech_model "tiny-wavlm-pretrained-v3" -> '
        '"tiny-wavlm-pretrained-v2". Rerun with --retrain-changed'
    )
    assert len(read_steps(log)) == ran


def test_method_overrides_are_settings_of_their_method_alone(
    light_launcher, tmp_path, capsys
):
    """A stage-1 YAML's ``method_overrides`` reach stage 2 and FT: editing
    FT's changes FT's steps, not stage 1."""
    launcher, log = light_launcher
    hparams = tmp_path / "my_demo.yaml"
    hparams.write_text(Path(shipped_hparams("demo")).read_text())
    experiment = tmp_path / "experiment"
    arguments = demo(experiment, launcher, "--runs", "0")
    arguments[1] = str(hparams)
    assert main(arguments) == 0
    text = hparams.read_text()
    hparams.write_text(text.replace("        lr: 0.002", "        lr: 0.004"))
    capsys.readouterr()
    assert main(arguments) == 1
    step = experiment / "paper" / "fold_0" / "iemocap" / "finetune"
    assert one_error_line(capsys).startswith(
        f"sercl folds: error: {step}: made from other data or settings than "
        "now: settings: lr 0.002 -> 0.004"
    )


def test_moving_the_release_retrains_nothing(light_launcher, tmp_path):
    """The manifest's checksums stand for the audio: new paths to the same
    files give the same fingerprints."""
    launcher, log = light_launcher
    experiment = tmp_path / "experiment"
    assert main(demo(experiment, launcher, "--runs", "0")) == 0
    ran = len(read_steps(log))
    shutil.copytree(tmp_path / "data", tmp_path / "moved")
    moved = demo(experiment, launcher, "--runs", "0")
    moved[6] = f"--demo_data_folder={tmp_path / 'moved'}"
    assert main(moved) == 0
    assert len(read_steps(log)) == ran
    assert len(list((experiment / "prepared").glob("iemocap-*"))) == 2


def test_a_step_without_a_record_is_not_trusted(
    light_launcher, tmp_path, capsys
):
    launcher, log = light_launcher
    experiment = tmp_path / "experiment"
    arguments = demo(experiment, launcher, "--runs", "0")
    assert main(arguments) == 0
    step = experiment / "paper" / "fold_0" / "casia" / "finetune"
    (step / layout.STEP_RECORD_FILE).unlink()  # as an older version left it
    ran = len(read_steps(log))
    capsys.readouterr()
    assert main(arguments) == 1
    assert one_error_line(capsys) == (
        f"sercl folds: error: {step}: has no step_record.json (made by an "
        "older version of sercl, or run by hand), so what it was made from "
        "cannot be checked. Rerun with --retrain-changed to train it again "
        "(its old folder is deleted once the new one is done)\n"
    )
    assert main([*arguments, "--retrain-changed"]) == 0
    assert [s["method"] for s in read_steps(log)[ran:]] == ["finetune"]
    assert (step / layout.STEP_RECORD_FILE).exists()
    assert not (experiment / "paper" / "replaced").exists()


def test_a_damaged_output_makes_its_step_run_again(
    light_launcher, tmp_path, capsys
):
    """A done marker stands for its step's outputs as the step wrote them:
    a truncated encoder does not make stage 1 done already."""
    launcher, log = light_launcher
    experiment = tmp_path / "experiment"
    arguments = demo(experiment, launcher, "--runs", "0")
    assert main(arguments) == 0
    run = experiment / "paper" / "fold_0"
    for damages, rerun in [
        (
            {
                "contrastive/encoder/ssl.ckpt": (
                    lambda path: path.write_text("weig"),  # truncated
                    "is not the file the step wrote (4 bytes, 7 recorded)",
                ),
                "iemocap/classifier/test_metrics.json": (
                    lambda path: path.write_text('{"UA": 0.0}'),
                    "is not the file the step wrote (same size, other content)",
                ),
                "casia/finetune/predictions.csv": (
                    lambda path: path.unlink(),
                    "is missing",
                ),
            },
            ["demo", "classifier", "finetune"],
        ),
        (
            {
                "contrastive/encoder/pooling.ckpt": (
                    lambda path: path.write_text("WEIGHTS"),
                    "is not the file the step wrote (same size, other content)",
                )
            },
            ["demo"],
        ),
    ]:
        ran = len(read_steps(log))
        for name, (damage, _) in damages.items():
            damage(run / name)
        capsys.readouterr()
        assert main(arguments) == 0
        lines = [
            line
            for line in capsys.readouterr().out.splitlines()
            if line.startswith("[sercl] not done")
        ]
        assert lines == [
            f"[sercl] not done: {run / name} {message}: running the step again"
            for name, (_, message) in damages.items()
        ]
        assert [s["method"] for s in read_steps(log)[ran:]] == rerun
    assert main(arguments) == 0  # rewritten and recorded: done
    assert [s["method"] for s in read_steps(log)[ran:]] == rerun


def test_results_leave_out_runs_made_from_old_data(
    light_launcher, tmp_path, capsys, monkeypatch
):
    """``--runs 0`` on new data leaves run 1's old steps in the protocol
    folder: they are named and left out of the results."""
    launcher, log = light_launcher
    monkeypatch.setattr(cli, "write_report", write_report)
    experiment = tmp_path / "experiment"
    arguments = demo(experiment, launcher, methods=("finetune",))
    assert main([*arguments, "--runs", "0", "1"]) == 0
    results = experiment / "paper" / "results.json"
    summary = json.loads(results.read_text())
    assert sorted(summary["iemocap"]["finetune"]["folds"]) == ["0", "1"]
    remove_speaker(tmp_path / "data", "Ses01F")
    capsys.readouterr()
    assert main([*arguments, "--runs", "0", "--retrain-changed"]) == 0
    assert [step["run"] for step in read_steps(log)[4:]] == [0]
    stale = experiment / "paper" / "fold_1" / "iemocap" / "finetune"
    assert (
        f"[sercl] left out of the results: {stale}: made from other data or "
        "settings than the last `sercl folds` on this folder (rerun it with "
        "--retrain-changed)\n"
    ) in capsys.readouterr().out
    summary = json.loads(results.read_text())
    assert sorted(summary["iemocap"]["finetune"]["folds"]) == ["0"]
    # casia did not change: both of its runs still count.
    assert sorted(summary["casia"]["finetune"]["folds"]) == ["0", "1"]
    markdown = (experiment / "paper" / "results.md").read_text()
    assert markdown.endswith(
        "Left out of these results:\n\n- `fold_1/iemocap/finetune`: made "
        "from other data or settings than the last `sercl folds` on this "
        "folder (rerun it with --retrain-changed)\n"
    )


def test_cross_corpus_tests_of_a_trained_again_step_are_done_again(
    light_launcher, tmp_path, capsys, monkeypatch
):
    """A cross-corpus test is a finished step too: it is made from the
    tested step, and done again when that step is trained again."""
    launcher, log = light_launcher
    tested = []

    def evaluate_run(experiment, protocol, fold, prepared, methods, run_opts):
        """As the real one: each missing pair is tested (here: two rows)."""
        written = []
        for method in ("classifier", "finetune"):
            for source in prepared:
                for target in [t for t in prepared if t != source]:
                    folder = layout.cross_corpus_folder(
                        experiment, protocol, fold, method, source, target
                    )
                    path = layout.step_file(folder, layout.PREDICTIONS_FILE)
                    if method in methods and not os.path.exists(path):
                        tested.append(f"{source}/{target}/{method}")
                        rows = [
                            {"id": f"u{i}", "corpus": target, "speaker": "s",
                             "emotion": "a", "predicted": "ab"[i],
                             "probabilities": [0.5, 0.5]}
                            for i in range(2)
                        ]  # fmt: skip
                        os.makedirs(folder, exist_ok=True)
                        written.append(write_predictions(path, "ab", rows))
        return written

    monkeypatch.setattr(cross_corpus, "evaluate_run", evaluate_run)
    experiment = tmp_path / "experiment"
    arguments = demo(experiment, launcher, "--runs", "0")
    arguments.remove("--no-cross-corpus")
    pairs = [
        "iemocap/casia/classifier",
        "casia/iemocap/classifier",
        "iemocap/casia/finetune",
        "casia/iemocap/finetune",
    ]
    assert main(arguments) == 0
    assert sorted(tested) == sorted(pairs)
    assert main(arguments) == 0  # every test done
    assert len(tested) == 4
    assert main([*arguments, "--finetune.lr=0.004", "--retrain-changed"]) == 0
    assert sorted(tested[4:]) == sorted(pairs[2:])
    folder = experiment / "paper" / "cross_corpus" / "fold_0"
    damaged = folder / "iemocap" / "casia" / "classifier" / "predictions.csv"
    damaged.write_text(damaged.read_text().replace("u0", "u9"))
    capsys.readouterr()
    assert main([*arguments, "--finetune.lr=0.004"]) == 0
    assert tested[6:] == ["iemocap/casia/classifier"]
    assert (
        f"[sercl] not done: {damaged} is not the file the step wrote (same "
        "size, other content): running the step again"
    ) in capsys.readouterr().out
    table = json.loads((folder.parent / "cross_corpus.json").read_text())
    assert sorted(table["finetune"]["iemocap"]) == ["casia"]
    assert not (experiment / "paper" / "replaced").exists()


def test_a_stage1_yaml_of_version_0_1_runs_and_its_steps_stay_done(
    light_launcher, tmp_path, caplog
):
    """A stage-1 YAML written for 0.1 names the run ``fold``: its steps
    get ``--fold``, with a warning naming the YAML, and are recorded as
    the same YAML with ``run`` records them: nothing is trained again."""
    launcher, log = light_launcher
    old_yaml = tmp_path / "old" / "demo.yaml"
    old_yaml.parent.mkdir()
    text = Path(shipped_hparams("demo")).read_text(encoding="utf-8")
    assert "\nrun: 0 " in text and "!ref <run>" in text
    old_yaml.write_text(
        text.replace("\nrun: 0 ", "\nfold: 0 ").replace("<run>", "<fold>")
    )
    experiment = tmp_path / "experiment"
    arguments = demo(experiment, launcher, "--runs", "0")
    assert main([*arguments[:1], str(old_yaml), *arguments[2:]]) == 0
    assert [(s["method"], s["key"]) for s in read_steps(log)] == [
        ("demo", "fold"),
        ("classifier", "run"),
        ("finetune", "run"),
        ("classifier", "run"),
        ("finetune", "run"),
    ]
    assert (
        f"{old_yaml}: the key 'fold' is now 'run' ('fold' still works, "
        "for now)" in caplog.messages
    )
    assert main(arguments) == 0  # the shipped YAML, which names it run
    assert len(read_steps(log)) == 5
