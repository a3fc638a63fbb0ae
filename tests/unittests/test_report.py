"""collect_results recomputes every step's metrics from predictions.csv.

The CSV files are written here with the csv module (2 folds x 1 corpus x
2 methods) and the expected scores come from scikit-learn and numpy.
"""

import csv
import json
import os
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from speechbrain_sercl.predictions import read_predictions, write_predictions
from speechbrain_sercl.reporting.results import (
    collect_results,
    results_markdown,
    write_results,
)

# The p_<class> column order, deliberately not alphabetical.
CLASSES = ["sad", "angry", "happy"]
# (fold, method) -> [(true, predicted)], one pair per utterance.
STEPS = {
    (0, "classifier"): [
        ("sad", "sad"),
        ("sad", "angry"),
        ("angry", "angry"),
        ("angry", "angry"),
        ("happy", "sad"),
        ("happy", "happy"),
        ("sad", "sad"),
    ],
    (1, "classifier"): [
        ("sad", "sad"),
        ("angry", "happy"),
        ("happy", "happy"),
        ("happy", "happy"),
        ("angry", "angry"),
    ],
    # "happy" predicted but never true: UA ignores it, macro-F1 counts 0.
    (0, "finetune"): [
        ("sad", "happy"),
        ("sad", "sad"),
        ("angry", "angry"),
        ("angry", "sad"),
        ("angry", "angry"),
    ],
    (1, "finetune"): [
        ("sad", "angry"),
        ("angry", "angry"),
        ("happy", "happy"),
        ("sad", "sad"),
        ("happy", "angry"),
        ("happy", "happy"),
    ],
}


def _probabilities(predicted):
    """Probabilities in CLASSES order that peak at ``predicted``."""
    return [0.7 if name == predicted else 0.15 for name in CLASSES]


def _write_step(step, pairs, classes=CLASSES):
    step.mkdir(parents=True)
    with open(step / "predictions.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["id", "corpus", "speaker", "emotion", "predicted"]
            + [f"p_{name}" for name in classes]
        )
        for index, (true, predicted) in enumerate(pairs):
            writer.writerow(
                [f"u{index}", "corp", f"s{index % 2}", true, predicted]
                + _probabilities(predicted)
            )


@pytest.fixture
def protocol_folder(tmp_path):
    root = tmp_path / "exp" / "paper"
    for (fold, method), pairs in STEPS.items():
        _write_step(root / f"fold_{fold}" / "corp" / method, pairs)
    # Stage 1 and stray entries are not steps.
    (root / "fold_0" / "contrastive" / "encoder").mkdir(parents=True)
    (root / "notes.txt").write_text("not a fold")
    return root


def _expected_scores(pairs):
    truth = [true for true, _ in pairs]
    predicted = [pred for _, pred in pairs]
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true" for the finetune fold 0.
        warnings.simplefilter("ignore", UserWarning)
        ua = skm.balanced_accuracy_score(truth, predicted)
    return {
        "UA": ua,
        "WA": skm.accuracy_score(truth, predicted),
        "macro_F1": skm.f1_score(
            truth, predicted, average="macro", zero_division=0
        ),
        "confusion": skm.confusion_matrix(truth, predicted, labels=CLASSES),
    }


@pytest.mark.parametrize("method", ["classifier", "finetune"])
def test_per_fold_mean_std_and_confusion_match_sklearn(protocol_folder, method):
    results = collect_results(protocol_folder)
    assert set(results) == {"corp"}
    assert set(results["corp"]) == {"classifier", "finetune"}
    summary = results["corp"][method]
    expected = {fold: _expected_scores(STEPS[fold, method]) for fold in (0, 1)}
    assert sorted(summary["folds"]) == [0, 1]
    for fold in (0, 1):
        for name in ("UA", "WA", "macro_F1"):
            assert summary["folds"][fold][name] == pytest.approx(
                expected[fold][name]
            ), (fold, name)
    for name in ("UA", "WA", "macro_F1"):
        values = np.array([expected[fold][name] for fold in (0, 1)])
        assert summary["mean"][name] == pytest.approx(np.mean(values))
        assert summary["std"][name] == pytest.approx(np.std(values, ddof=0))
    total = expected[0]["confusion"] + expected[1]["confusion"]
    assert summary["confusion"] == total.tolist()
    assert summary["classes"] == CLASSES


def test_a_finished_step_without_predictions_is_an_error(protocol_folder):
    step = protocol_folder / "fold_2" / "corp" / "finetune"
    step.mkdir(parents=True)
    (step / "test_metrics.json").write_text(json.dumps({"UA": 0.5}))
    with pytest.raises(FileNotFoundError, match="no predictions.csv"):
        collect_results(protocol_folder)


def test_the_final_run_is_not_a_fold(protocol_folder):
    before = collect_results(protocol_folder)
    final = protocol_folder / "final" / "corp" / "classifier"
    final.mkdir(parents=True)
    (final / "trained.json").write_text(json.dumps({"train_utterances": 9}))
    (protocol_folder / "final" / "contrastive" / "encoder").mkdir(parents=True)
    assert collect_results(protocol_folder) == before
    # Even with a predictions file of its own, it is no fold.
    _write_step(final.parent / "finetune", [("sad", "sad")])
    assert collect_results(protocol_folder) == before


def test_folds_must_share_the_class_order(protocol_folder):
    step = protocol_folder / "fold_2" / "corp" / "finetune"
    _write_step(step, [("sad", "sad")], classes=sorted(CLASSES))
    with pytest.raises(ValueError, match="one class order"):
        collect_results(protocol_folder)


def test_an_unknown_class_in_a_row_is_an_error(protocol_folder):
    step = protocol_folder / "fold_2" / "corp" / "finetune"
    _write_step(step, [("sad", "sad"), ("calm", "sad")])
    with pytest.raises(ValueError, match="'calm', not one of"):
        collect_results(protocol_folder)


def test_write_predictions_round_trips_through_the_csv_module(tmp_path):
    classes = ["a,b", "c"]  # a class name that needs quoting
    rows = [
        {
            "id": "u1",
            "corpus": "x",
            "speaker": "s 1",
            "emotion": "a,b",
            "predicted": "c",
            "probabilities": [0.1234567890123, 0.8765432109877],
        }
    ]
    path = tmp_path / "predictions.csv"
    write_predictions(path, classes, rows)
    with open(path, newline="") as csv_file:
        found = list(csv.DictReader(csv_file))
    assert found == [
        {
            "id": "u1",
            "corpus": "x",
            "speaker": "s 1",
            "emotion": "a,b",
            "predicted": "c",
            "p_a,b": "0.1234567890123",
            "p_c": "0.8765432109877",
        }
    ]
    assert read_predictions(path) == (classes, rows)


def test_write_predictions_refuses_a_repeated_utterance(tmp_path):
    row = {
        "id": "u1",
        "corpus": "x",
        "speaker": "s",
        "emotion": "a",
        "predicted": "a",
        "probabilities": [1.0, 0.0],
    }
    path = tmp_path / "predictions.csv"
    with pytest.raises(ValueError, match="'u1' twice"):
        write_predictions(path, ["a", "b"], [row, dict(row)])
    assert not path.exists()


def test_write_results_files(protocol_folder, tmp_path):
    results = collect_results(protocol_folder)
    written = write_results(results, tmp_path / "out")
    names = sorted(os.path.basename(path) for path in written)
    assert names == ["results.json", "results.md"]
    stored = json.loads((tmp_path / "out" / "results.json").read_text())
    assert stored["corp"]["finetune"]["mean"] == pytest.approx(
        results["corp"]["finetune"]["mean"]
    )
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert markdown == results_markdown(results)
    assert "| corp | FT baseline |" in markdown
