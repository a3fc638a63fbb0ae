"""An exported model is what its step tested, loaded as users load it.

A tiny run of the demo protocol (fold 0, one epoch per step; the
``experiment`` fixture of ``conftest.py``) is exported
with ``sercl export``; SpeechBrain's ``EncoderClassifier.from_hparams``
loads it from a local folder, from another working directory once the run
is gone, and from a Hugging Face id resolved offline from a cache in
snapshot layout. Each time it must give the step's own test predictions:
the same labels and the same probabilities within ``TOLERANCE`` (the
files are read and resampled by SpeechBrain's loader instead of ours).
Stage 2's predictions come from its float16 feature cache (on by
default), the export runs the speech model: measured 3.8e-6 apart at
most, so the tolerance still holds.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speechbrain_sercl import layout
from speechbrain_sercl.cli import main as sercl

pytestmark = pytest.mark.slow

TOLERANCE = 1e-4
STEPS = (("iemocap", "classifier"), ("casia", "finetune"))
HUB_ID = "sercl-tests/tiny-emotion"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def step_folder(experiment, corpus, method):
    return experiment / "paper" / "fold_0" / corpus / method


def fold_predictions(step):
    """The step's test predictions and the audio file of each utterance,
    read from the prepared manifest (not from anything the export wrote)."""
    with open(step / "predictions.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    (manifest_path,) = step.parents[3].glob(
        f"prepared/{step.parent.name}-*/manifest.json"
    )
    manifest = json.loads(manifest_path.read_text())
    classes = [name[2:] for name in rows[0] if name.startswith("p_")]
    return [
        {
            "wav": manifest[row["id"]]["wav"],
            "predicted": row["predicted"],
            "probabilities": [float(row[f"p_{name}"]) for name in classes],
        }
        for row in rows
    ], classes


def assert_reproduces(classifier, rows, classes):
    """``classify_file`` gives every row's label and probabilities."""
    assert (
        classifier.hparams.label_encoder.decode_ndim(list(range(len(classes))))
        == classes
    )
    for row in rows:
        log_probabilities, score, index, labels = classifier.classify_file(
            row["wav"]
        )
        assert labels == [row["predicted"]], row["wav"]
        probabilities = log_probabilities.exp()[0].tolist()
        assert probabilities == pytest.approx(
            row["probabilities"], abs=TOLERANCE
        ), row["wav"]
        assert score.exp().item() == pytest.approx(max(probabilities))


def export(step, output):
    assert sercl(["export", str(step), str(output)]) == 0
    return output


@pytest.mark.parametrize("corpus, method", STEPS)
def test_export_loads_elsewhere_after_the_run_is_gone(
    experiment, tmp_path, monkeypatch, corpus, method
):
    from speechbrain.inference.classifiers import EncoderClassifier

    run_copy = tmp_path / "run"
    shutil.copytree(experiment / "paper", run_copy / "paper", symlinks=False)
    shutil.copytree(experiment / "prepared", run_copy / "prepared")
    step = step_folder(run_copy, corpus, method)
    rows, classes = fold_predictions(step)
    cache = Path(layout.feature_cache_folder(step / "save"))
    cached = list(cache.glob("*/*.pt"))
    # Stage 2 tested (and trained) from cached features, FT from audio.
    assert len(cached) >= len(rows) if method == "classifier" else not cached
    folder = export(step, tmp_path / "model")
    shutil.rmtree(run_copy)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    classifier = EncoderClassifier.from_hparams(source=str(folder))
    assert_reproduces(classifier, rows, classes)
    assert sorted(os.listdir(elsewhere)) == []


def test_the_exported_pooling_is_stage_2s_not_stage_1s(experiment, tmp_path):
    step = step_folder(experiment, "iemocap", "classifier")
    folder = export(step, tmp_path / "model")
    exported = torch.load(folder / "pooling.ckpt", weights_only=True)
    (checkpoint,) = (step / "save").glob("CKPT+*")
    trained = torch.load(checkpoint / "pooling.ckpt", weights_only=True)
    stage1 = torch.load(
        experiment / "paper/fold_0/contrastive/encoder/pooling.ckpt",
        weights_only=True,
    )
    assert exported.keys() == trained.keys()
    assert all(torch.equal(exported[k], trained[k]) for k in trained)
    assert not all(torch.equal(exported[k], stage1[k]) for k in stage1)


def write_hub_cache(cache, folder):
    """A Hugging Face cache holding ``folder`` as ``HUB_ID`` at ``main``."""
    repo = cache / ("models--" + HUB_ID.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)


HUB_SCRIPT = """
import json, sys
from speechbrain.inference.classifiers import EncoderClassifier
classifier = EncoderClassifier.from_hparams(source=sys.argv[1],
                                            savedir=sys.argv[2])
out = []
for wav in sys.argv[3:]:
    log_probabilities, _, _, labels = classifier.classify_file(wav)
    out.append([labels[0], log_probabilities.exp()[0].tolist()])
print(json.dumps(out))
"""


def test_export_loads_from_a_hub_id_offline(experiment, tmp_path):
    step = step_folder(experiment, "casia", "classifier")
    rows, _ = fold_predictions(step)
    cache = tmp_path / "hf-cache"
    write_hub_cache(cache, export(step, tmp_path / "model"))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(cache),
        "HF_HOME": str(tmp_path / "hf-home"),
    }
    result = subprocess.run(
        [sys.executable, "-c", HUB_SCRIPT, HUB_ID, str(tmp_path / "saved")]
        + [row["wav"] for row in rows],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    predicted = json.loads(result.stdout.strip().splitlines()[-1])
    for row, (label, probabilities) in zip(rows, predicted, strict=True):
        assert label == row["predicted"]
        assert probabilities == pytest.approx(
            row["probabilities"], abs=TOLERANCE
        )


def test_sercl_predict_loads_an_export_without_trust(experiment, tmp_path):
    """The allow-list of ``sercl predict`` takes what ``sercl export``
    writes: the step's own predictions, no --trust-remote-config."""
    step = step_folder(experiment, "casia", "finetune")
    rows, classes = fold_predictions(step)
    folder = export(step, tmp_path / "model")
    output = tmp_path / "predicted.csv"
    wavs = [row["wav"] for row in rows]
    argv = ["predict", *wavs, "--model", str(folder), "--output", str(output)]
    assert sercl(argv) == 0
    with open(output, newline="") as table:
        predicted = list(csv.DictReader(table))
    assert [row["file"] for row in predicted] == wavs
    for row, found in zip(rows, predicted, strict=True):
        assert found["emotion"] == row["predicted"]
        probabilities = [float(found[f"p_{name}"]) for name in classes]
        assert probabilities == pytest.approx(
            row["probabilities"], abs=TOLERANCE
        )


def test_padded_batches_give_each_file_its_own_result(experiment, tmp_path):
    from speechbrain.inference.classifiers import EncoderClassifier

    step = step_folder(experiment, "iemocap", "finetune")
    rows, _ = fold_predictions(step)
    classifier = EncoderClassifier.from_hparams(
        source=str(export(step, tmp_path / "model"))
    )
    signals = [classifier.load_audio(row["wav"]) for row in rows[:5]]
    longest = max(len(signal) for signal in signals)
    batch = torch.zeros(len(signals), longest)
    for i, signal in enumerate(signals):
        batch[i, : len(signal)] = signal
    lengths = torch.tensor([len(signal) / longest for signal in signals])
    batched, _, _, labels = classifier.classify_batch(batch, lengths)
    for i, signal in enumerate(signals):
        alone, _, _, label = classifier.classify_batch(signal[None])
        assert labels[i] == label[0]
        assert torch.allclose(batched[i], alone[0], atol=1e-5)


def test_loading_is_strict(experiment, tmp_path):
    from speechbrain.inference.classifiers import EncoderClassifier

    step = step_folder(experiment, "casia", "classifier")
    folder = export(step, tmp_path / "model")
    labels = folder / "label_encoder.ckpt"
    lines = labels.read_text().splitlines(keepends=True)
    labels.write_text("".join(line for line in lines if "'sad'" not in line))
    with pytest.raises(RuntimeError, match="names 5 emotions .* 6 outputs"):
        EncoderClassifier.from_hparams(source=str(folder))

    folder = export(step, tmp_path / "model2")
    pooling = torch.load(folder / "pooling.ckpt", weights_only=True)
    pooling["extra.weight"] = torch.zeros(1)
    torch.save(pooling, folder / "pooling.ckpt")
    with pytest.raises(RuntimeError, match=r"unexpected keys \['extra"):
        EncoderClassifier.from_hparams(source=str(folder))


def test_exported_files_load_as_plain_weights(experiment, tmp_path):
    folder = export(
        step_folder(experiment, "iemocap", "classifier"), tmp_path / "m"
    )
    for name in ("ssl", "pooling", "classifier"):
        state = torch.load(folder / f"{name}.ckpt", weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert oct(os.stat(folder).st_mode & 0o777) == "0o755"


def test_model_card_states_the_steps_results(experiment, tmp_path):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    step = step_folder(experiment, "casia", "finetune")
    folder = export(step, tmp_path / "model")
    card = (folder / "README.md").read_text()
    header = card.split("---")[1]
    assert "library_name: speechbrain" in header
    assert "pipeline_tag: audio-classification" in header
    assert "- casia" in header
    with open(step / "predictions.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    truth = [row["emotion"] for row in rows]
    guess = [row["predicted"] for row in rows]
    ua = 100 * balanced_accuracy_score(truth, guess)
    wa = 100 * accuracy_score(truth, guess)
    assert f"| casia | paper | 0 | {len(rows)} | {ua:.2f} | {wa:.2f} |" in card
    assert "train_classifier.py" in card  # the step's own command
    assert "--corpus=casia" in card


def test_export_refuses_what_it_cannot_export(experiment, tmp_path, capsys):
    contrastive = experiment / "paper" / "fold_0" / "contrastive"
    assert sercl(["export", str(contrastive), str(tmp_path / "a")]) == 1
    assert "export a stage-2" in capsys.readouterr().err
    step = step_folder(experiment, "casia", "classifier")
    (tmp_path / "taken").mkdir()
    assert sercl(["export", str(step), str(tmp_path / "taken")]) == 1
    assert "exists" in capsys.readouterr().err
    unfinished = tmp_path / "paper" / "fold_0" / "casia" / "classifier"
    shutil.copytree(step, unfinished)
    (unfinished / "test_metrics.json").unlink()
    assert sercl(["export", str(unfinished), str(tmp_path / "b")]) == 1
    assert "has not finished" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert not list(Path(tmp_path).glob(".staging-*"))
