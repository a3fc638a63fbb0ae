"""The test step's predictions.csv: one row per utterance, and the metrics.

A tiny WavLM under attention pooling and a 32-unit emotion classifier is
evaluated in-process on a few wav files of different lengths (batches of
3, so padding is exercised). The CSV is read back with the csv module and
checked against the model run here on the same batches and against
scikit-learn's metrics.
"""

import csv
import functools
import json

import numpy as np
import pytest
import soundfile
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
)
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain.utils.train_logger import FileTrainLogger

import speechbrain_sercl.method.brains as brains
from speechbrain_sercl.data.pipeline import make_dataset, make_label_encoder
from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.method.brains import ClassifierBrain
from speechbrain_sercl.method.head import EmotionClassifier
from speechbrain_sercl.method.pooling import AttentionPooling
from speechbrain_sercl.method.schedulers import MultiStepScheduler

SAMPLE_RATE = 16000
# id -> (emotion, speaker, seconds): 3 classes, 2 speakers, 7 lengths.
UTTERANCES = {
    "u0": ("sad", "s0", 0.50),
    "u1": ("angry", "s1", 1.20),
    "u2": ("happy", "s0", 0.75),
    "u3": ("sad", "s1", 1.00),
    "u4": ("angry", "s0", 0.40),
    "u5": ("happy", "s1", 0.90),
    "u6": ("sad", "s0", 0.60),
}
TEST_BATCH_SIZE = 3  # batches of 3, 3 and 1 utterances


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    entries = {}
    for utt_id, (emotion, speaker, seconds) in UTTERANCES.items():
        wav = folder / f"{utt_id}.wav"
        samples = 0.3 * rng.standard_normal(int(seconds * SAMPLE_RATE))
        soundfile.write(wav, samples, SAMPLE_RATE, subtype="FLOAT")
        entries[utt_id] = {
            "wav": str(wav),
            "emotion": emotion,
            "corpus": "corp",
            "speaker": speaker,
        }
    return entries


@pytest.fixture(scope="module")
def ssl_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("ssl")


def _brain(manifest, ssl_folder, output_folder):
    torch.manual_seed(3)
    encoder = make_label_encoder(e["emotion"] for e in manifest.values())
    ssl = SSLBackbone("tiny-wavlm", ssl_folder)
    classifier = EmotionClassifier(ssl.hidden_size, len(encoder), 32)
    with torch.no_grad():  # spread the random scores over the classes
        classifier.layers[2].weight.mul_(30)
    modules = {
        "ssl": ssl,
        "pooling": AttentionPooling(ssl.hidden_size),
        "classifier": classifier,
    }
    hparams = {
        "lr_schedule": MultiStepScheduler(1e-3, milestones=[5], factor=0.5),
        "lr_scales": {"ssl": 0.4},
        "train_logger": FileTrainLogger(output_folder / "train_log.txt"),
        "epoch_counter": EpochCounter(limit=1),
        "label_encoder": encoder,
        "output_folder": str(output_folder),
    }
    return ClassifierBrain(
        modules=modules,
        opt_class=functools.partial(torch.optim.Adam, lr=1e-3),
        hparams=hparams,
        run_opts={"device": "cpu"},
    )


def _evaluate(manifest, ssl_folder, output_folder):
    brain = _brain(manifest, ssl_folder, output_folder)
    dataset = make_dataset(
        manifest,
        list(manifest),
        label_encoder=brain.hparams.label_encoder,
    )
    brain.evaluate(
        dataset,
        test_loader_kwargs={"batch_size": TEST_BATCH_SIZE},
        progressbar=False,
    )
    return brain


@pytest.fixture(scope="module")
def evaluated(manifest, ssl_folder, tmp_path_factory):
    output_folder = tmp_path_factory.mktemp("step")
    brain = _evaluate(manifest, ssl_folder, output_folder)
    with open(output_folder / "predictions.csv", newline="") as csv_file:
        reader = csv.DictReader(csv_file)
        header, rows = reader.fieldnames, list(reader)
    with open(output_folder / "test_metrics.json") as json_file:
        report = json.load(json_file)
    return brain, header, rows, report


def test_header_is_fixed_columns_then_one_probability_per_class(evaluated):
    brain, header, _, report = evaluated
    classes = ["angry", "happy", "sad"]  # the encoder sorts by name
    encoder = brain.hparams.label_encoder
    assert [encoder.ind2lab[i] for i in range(3)] == classes
    assert header == [
        "id",
        "corpus",
        "speaker",
        "emotion",
        "predicted",
        "p_angry",
        "p_happy",
        "p_sad",
    ]
    assert report["classes"] == classes


def test_every_utterance_once_with_its_manifest_fields(evaluated, manifest):
    _, _, rows, _ = evaluated
    assert sorted(row["id"] for row in rows) == sorted(manifest)
    assert len(rows) == len(manifest)
    for row in rows:
        entry = manifest[row["id"]]
        assert row["corpus"] == entry["corpus"] == "corp"
        assert row["speaker"] == entry["speaker"]
        assert row["emotion"] == entry["emotion"]


def test_probabilities_sum_to_one_and_predicted_is_the_arg_max(evaluated):
    _, header, rows, _ = evaluated
    columns = [name for name in header if name.startswith("p_")]
    for row in rows:
        probabilities = np.array([float(row[name]) for name in columns])
        assert np.all(probabilities >= 0)
        assert probabilities.sum() == pytest.approx(
            1.0, abs=1e-6
        )  # float32 logs
        best = columns[int(np.argmax(probabilities))]
        assert row["predicted"] == best[len("p_") :]
    # The scaled classifier does not predict one class for everything.
    assert len({row["predicted"] for row in rows}) > 1


def test_each_row_holds_its_own_utterance_probabilities(evaluated, manifest):
    """The model run here on each utterance alone, matched by id.

    The test loader forms batches of 3 of different lengths; the speech
    model's outputs do not depend on batch mates (see
    test_batch_independence.py), so each row must hold what the utterance
    gets alone, within float32 rounding.
    """
    brain, header, rows, _ = evaluated
    columns = [name for name in header if name.startswith("p_")]
    encoder = brain.hparams.label_encoder
    classes = [name[len("p_") :] for name in columns]
    dataset = make_dataset(manifest, list(manifest))
    modules = brain.modules
    expected = {}
    with torch.no_grad():
        for index in range(len(dataset)):
            item = dataset[index]
            hidden = modules.ssl(item["sig"][None], torch.ones(1))
            log_probabilities = modules.classifier(modules.pooling(hidden))
            # Reorder the model's outputs (encoder order) by column.
            expected[item["id"]] = [
                float(log_probabilities[0, encoder.lab2ind[name]].exp())
                for name in classes
            ]
    for row in rows:
        found = [float(row[name]) for name in columns]
        assert found == pytest.approx(expected[row["id"]], abs=1e-5)


def test_metrics_from_the_csv_match_test_metrics_json(evaluated):
    _, _, rows, report = evaluated
    truth = [row["emotion"] for row in rows]
    predicted = [row["predicted"] for row in rows]
    assert report["UA"] == pytest.approx(
        balanced_accuracy_score(truth, predicted)
    )
    assert report["WA"] == pytest.approx(accuracy_score(truth, predicted))
    assert report["macro_F1"] == pytest.approx(
        f1_score(truth, predicted, average="macro", zero_division=0)
    )
    expected = confusion_matrix(truth, predicted, labels=report["classes"])
    assert report["confusion"] == expected.tolist()


def test_a_failed_predictions_write_leaves_no_test_report(
    manifest, ssl_folder, tmp_path, monkeypatch
):
    """test_metrics.json (a finished step) comes after predictions.csv."""

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(brains, "write_predictions", fail)
    with pytest.raises(OSError, match="disk full"):
        _evaluate(manifest, ssl_folder, tmp_path)
    assert not (tmp_path / "test_metrics.json").exists()
    assert not (tmp_path / "predictions.csv").exists()


def test_only_the_main_process_writes(
    manifest, ssl_folder, tmp_path, monkeypatch
):
    monkeypatch.setattr(brains, "if_main_process", lambda: False)
    _evaluate(manifest, ssl_folder, tmp_path)
    assert not (tmp_path / "predictions.csv").exists()
    assert not (tmp_path / "test_metrics.json").exists()
