"""Tests for UA, WA, macro-F1 and the confusion matrix against scikit-learn."""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from speechbrain_sercl.metrics import (
    EmotionMetricStats,
    confusion_matrix,
    macro_f1,
    mean_std,
    unweighted_accuracy,
    weighted_accuracy,
)

N_CLASSES = 5


def random_case(seed, size=40):
    """Random labels where class 3 is never predicted and class 4 never a
    target (on top of random errors)."""
    rng = np.random.default_rng(seed)
    targets = rng.choice([0, 1, 2, 3], size=size)
    predictions = rng.choice([0, 1, 2, 4], size=size)
    agree = rng.random(size) < 0.5
    predictions[agree & (targets != 3)] = targets[agree & (targets != 3)]
    return targets, predictions


def sklearn_scores(targets, predictions):
    """UA, WA, macro-F1 and confusion from scikit-learn."""
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": the case under test.
        warnings.simplefilter("ignore", UserWarning)
        ua = skm.balanced_accuracy_score(targets, predictions)
    return {
        "UA": ua,
        "WA": skm.accuracy_score(targets, predictions),
        "macro_F1": skm.f1_score(
            targets, predictions, average="macro", zero_division=0
        ),
        "confusion": skm.confusion_matrix(
            targets, predictions, labels=list(range(N_CLASSES))
        ),
    }


@pytest.mark.parametrize("seed", range(6))
def test_functions_match_sklearn(seed):
    targets, predictions = random_case(seed)
    assert 3 not in predictions and 4 not in targets
    expected = sklearn_scores(targets, predictions)
    assert math.isclose(
        unweighted_accuracy(targets, predictions), expected["UA"]
    )
    assert math.isclose(weighted_accuracy(targets, predictions), expected["WA"])
    assert math.isclose(macro_f1(targets, predictions), expected["macro_F1"])
    np.testing.assert_array_equal(
        confusion_matrix(targets, predictions, N_CLASSES),
        expected["confusion"],
    )


@pytest.mark.parametrize("seed", range(3))
def test_all_classes_present_match_sklearn(seed):
    rng = np.random.default_rng(100 + seed)
    targets = rng.integers(0, N_CLASSES, size=30)
    predictions = rng.integers(0, N_CLASSES, size=30)
    expected = sklearn_scores(targets, predictions)
    assert math.isclose(
        unweighted_accuracy(targets, predictions), expected["UA"]
    )
    assert math.isclose(macro_f1(targets, predictions), expected["macro_F1"])


def test_hand_case():
    # Class 0: 2 of 3 right; class 1: 1 of 1; class 2 predicted once, wrong.
    targets = [0, 0, 0, 1]
    predictions = [0, 0, 2, 1]
    assert unweighted_accuracy(targets, predictions) == pytest.approx(5 / 6)
    assert weighted_accuracy(targets, predictions) == pytest.approx(3 / 4)
    # F1: class 0 = 4/5, class 1 = 1, class 2 = 0.
    assert macro_f1(targets, predictions) == pytest.approx((0.8 + 1) / 3)


def test_accepts_tensors_and_lists():
    targets, predictions = random_case(7)
    expected = unweighted_accuracy(targets, predictions)
    assert unweighted_accuracy(
        torch.from_numpy(targets), list(predictions)
    ) == pytest.approx(expected)


@pytest.mark.parametrize(
    "targets, predictions, message",
    [
        ([0, 1], [0], "must match"),
        ([], [], "empty"),
        ([0.0, 1.0], [0, 1], "integer"),
        ([[0, 1]], [[0, 1]], "1-D"),
        ([0, -1], [0, 1], "negative"),
    ],
)
def test_rejects_bad_labels(targets, predictions, message):
    with pytest.raises(ValueError, match=message):
        weighted_accuracy(targets, predictions)


def test_confusion_rejects_label_beyond_n_classes():
    with pytest.raises(ValueError, match="predictions holds class 3"):
        confusion_matrix([0, 1], [0, 3], n_classes=3)


def test_mean_std_is_population_std():
    values = [0.61, 0.55, 0.72, 0.64, 0.58]
    mean, std = mean_std(values)
    expected_mean = sum(values) / 5
    expected_std = math.sqrt(sum((v - expected_mean) ** 2 for v in values) / 5)
    assert mean == pytest.approx(expected_mean)
    assert std == pytest.approx(expected_std)
    assert mean_std([0.3]) == (0.3, 0.0)
    with pytest.raises(ValueError, match="mean_std"):
        mean_std([])


def batches_of(targets, predictions, seed):
    """Split a case into log-probability batches in SpeechBrain shapes."""
    rng = np.random.default_rng(seed)
    logits = torch.from_numpy(rng.normal(size=(len(targets), N_CLASSES)))
    # Make the arg-max the intended prediction.
    logits[torch.arange(len(targets)), torch.from_numpy(predictions)] += 100
    log_probabilities = torch.log_softmax(logits, dim=1)
    for start in range(0, len(targets), 16):
        stop = start + 16
        ids = [f"utt{i}" for i in range(start, min(stop, len(targets)))]
        yield (
            ids,
            log_probabilities[start:stop].unsqueeze(1),
            torch.from_numpy(targets[start:stop]).unsqueeze(1),
        )


@pytest.mark.parametrize("seed", range(3))
def test_metric_stats_matches_sklearn(seed):
    targets, predictions = random_case(seed, size=50)
    stats = EmotionMetricStats(n_classes=N_CLASSES)
    for batch in batches_of(targets, predictions, seed):
        stats.append(*batch)
    summary = stats.summarize()
    expected = sklearn_scores(targets, predictions)
    assert set(summary) == {"UA", "WA", "macro_F1", "confusion"}
    for field in ("UA", "WA", "macro_F1"):
        assert math.isclose(summary[field], expected[field])
        assert stats.summarize(field) == summary[field]
    np.testing.assert_array_equal(summary["confusion"], expected["confusion"])
    assert stats.ids == [f"utt{i}" for i in range(50)]


def test_metric_stats_infers_classes_and_clears():
    stats = EmotionMetricStats()
    stats.append(["a", "b"], torch.zeros(2, 3), torch.tensor([0, 2]))
    assert stats.summarize("confusion").shape == (3, 3)
    stats.clear()
    with pytest.raises(ValueError, match="nothing appended"):
        stats.summarize()


@pytest.mark.parametrize(
    "ids, log_probabilities, targets, message",
    [
        (["a"], torch.zeros(1, 4), torch.tensor([0]), "4 classes"),
        (["a", "b"], torch.zeros(1, 3), torch.tensor([0]), "must match"),
        (["a"], torch.zeros(1, 2, 3), torch.tensor([0]), "log_probabil"),
        (["a"], torch.zeros(1, 3), torch.zeros(1, 2), "targets"),
    ],
)
def test_metric_stats_rejects_bad_batches(
    ids, log_probabilities, targets, message
):
    with pytest.raises(ValueError, match=message):
        EmotionMetricStats(n_classes=3).append(ids, log_probabilities, targets)


def test_metric_stats_rejects_unknown_field():
    stats = EmotionMetricStats(n_classes=2)
    stats.append(["a"], torch.zeros(1, 2), torch.tensor([1]))
    with pytest.raises(ValueError, match="'accuracy'"):
        stats.summarize("accuracy")
