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
import sys
import textwrap
from pathlib import Path

import pytest

from speechbrain_sercl import layout
from speechbrain_sercl.backbone import PRETRAINED_TINY_SIZE
from speechbrain_sercl.cli import main
from speechbrain_sercl.data import manifest as manifest_module
from speechbrain_sercl.overrides import parse_arguments

FAKE_STEP = textwrap.dedent(
    """
    import json, os, sys
    import ruamel.yaml
    import speechbrain as sb
    from speechbrain_sercl import layout
    from speechbrain_sercl.report import write_predictions
    from speechbrain_sercl.runner import read_config

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
    args = [config["experiment_folder"], config["protocol"], config["fold"]]
    if script.endswith("train_contrastive.py"):
        encoder = layout.encoder_folder(*args)
        os.makedirs(encoder)
        open(os.path.join(encoder, layout.ENCODER_FILE), "w").close()
    elif config["fold"] == layout.FINAL_RUN:
        output = layout.step_folder(*args, method, config["corpus"])
        os.makedirs(output, exist_ok=True)
        with open(layout.finished_file(output, config["fold"]), "w") as out:
            json.dump({}, out)
    else:
        output = layout.step_folder(*args, method, config["corpus"])
        os.makedirs(output, exist_ok=True)
        # Fold f: 1 + f of the 2 utterances (all of class a) right, so
        # UA = recall of a = (1 + f) / 2.
        fold = config["fold"]
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
        assert values["fold"] == index // 5
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
    fake_launcher, tmp_path, capsys, monkeypatch
):
    launcher, log = fake_launcher
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
            tested.setdefault(key, []).append(values["fold"])
    assert tested == {
        ("iemocap", "classifier"): [0, 1, 2, 3, 4],
        ("casia", "classifier"): [0, 1, 2, 3],
    }
    stage1_runs = [
        s["values"]["fold"] for s in read_steps(log) if s["method"] == "demo"
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


def test_runner_resumes_after_a_failed_step(fake_launcher, tmp_path):
    launcher, log = fake_launcher
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
    assert all(s["values"]["fold"] == "final" for s in steps)
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
    fake_launcher, tmp_path, monkeypatch, capsys
):
    launcher, log = fake_launcher
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
