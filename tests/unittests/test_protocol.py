"""The fold runner's plan: order, overrides, skipping, results.

A stand-in launcher records each step's command line and writes the files
a real step would (the encoder, or test metrics with known values), so the
runner's logic is checked without training anything.
"""

import json
import sys
import textwrap
from pathlib import Path

import pytest

from speechbrain_sercl.cli import main
from speechbrain_sercl.protocol import split_arguments

REPO = Path(__file__).resolve().parents[2]

FAKE_STEP = textwrap.dedent(
    """
    import json, os, sys
    import ruamel.yaml
    from hyperpyyaml import resolve_references

    script, hparams, *arguments = sys.argv[1:]
    with open(os.environ["STEP_LOG"], "a") as log:
        log.write(json.dumps([os.path.basename(script), hparams, arguments]))
        log.write("\\n")
    overrides = {}
    for argument in arguments:
        key, _, value = argument[2:].partition("=")
        overrides[key] = ruamel.yaml.YAML(typ="safe").load(value)
    overrides.pop("device", None)
    with open(hparams) as stream:
        resolved = resolve_references(stream, overrides)
    config = ruamel.yaml.YAML(typ="rt").load(resolved)
    if script.endswith("train_contrastive.py"):
        os.makedirs(config["encoder_folder"])
        open(os.path.join(config["encoder_folder"], "ssl.ckpt"), "w").close()
    else:
        os.makedirs(config["output_folder"])
        ua = 0.5 + 0.1 * overrides["fold"]
        metrics = {"UA": ua, "WA": ua, "macro_F1": ua,
                   "confusion": [[1, 0], [0, 1]], "classes": ["a", "b"]}
        path = os.path.join(config["output_folder"], "test_metrics.json")
        with open(path, "w") as out:
            json.dump(metrics, out)
    """
)


@pytest.fixture
def fake_launcher(tmp_path, monkeypatch):
    script = tmp_path / "fake_step.py"
    script.write_text(FAKE_STEP)
    log = tmp_path / "steps.jsonl"
    monkeypatch.setenv("STEP_LOG", str(log))
    monkeypatch.chdir(REPO)
    return f"{sys.executable} {script}", log


def read_steps(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_runner_order_overrides_and_results(fake_launcher, tmp_path, capsys):
    launcher, log = fake_launcher
    experiment = tmp_path / "experiment"
    arguments = [
        "folds",
        "hparams/demo.yaml",
        "--runs",
        "0",
        "1",
        "--launcher",
        launcher,
        f"--experiment_folder={experiment}",
        "--device=cpu",
    ]
    assert main(arguments) == 0
    steps = read_steps(log)
    scripts = [step[0] for step in steps]
    assert (
        scripts == (["train_contrastive.py"] + ["train_classifier.py"] * 4) * 2
    )
    for index, (script, hparams, args) in enumerate(steps):
        fold = index // 5
        assert f"--fold={fold}" in args
        assert "--device=cpu" in args  # run options reach every step
        if script == "train_classifier.py":
            method = Path(hparams).stem.split("_")[0]
            encoder = experiment / "paper" / f"fold_{fold}" / "contrastive"
            has_encoder = f"--stage1_folder={encoder / 'encoder'}" in args
            assert has_encoder == (method == "classifier")
            assert "--ssl_source=tiny-wavlm" in args  # demo overrides

    results = json.loads((experiment / "paper" / "results.json").read_text())
    ua = results["iemocap"]["classifier"]
    assert ua["mean"]["UA"] == pytest.approx(0.55)
    assert ua["std"]["UA"] == pytest.approx(0.05)
    assert "55.00 ± 5.00" in capsys.readouterr().out

    # A rerun finds every step done and runs nothing.
    assert main(arguments) == 0
    assert len(read_steps(log)) == len(steps)


def test_runner_resumes_after_a_failed_step(fake_launcher, tmp_path):
    launcher, log = fake_launcher
    experiment = tmp_path / "experiment"
    done = experiment / "paper" / "fold_0" / "iemocap" / "classifier"
    done.mkdir(parents=True)
    (done / "test_metrics.json").write_text(
        json.dumps(
            {
                "UA": 1,
                "WA": 1,
                "macro_F1": 1,
                "confusion": [[1]],
                "classes": ["a"],
            }
        )
    )
    main(
        [
            "folds",
            "hparams/demo.yaml",
            "--runs",
            "0",
            "--methods",
            "classifier",
            "--launcher",
            launcher,
            f"--experiment_folder={experiment}",
        ]
    )
    steps = read_steps(log)
    assert [Path(step[1]).parent.name for step in steps[1:]] == ["CASIA"]


def test_split_arguments_rejects_flags_without_values():
    with pytest.raises(ValueError, match="--fold needs a value"):
        split_arguments(["--fold"])
    with pytest.raises(ValueError, match="expected --key=value"):
        split_arguments(["fold=1"])
