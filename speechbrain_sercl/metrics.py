"""Emotion recognition metrics: UA, WA, macro-F1 and the confusion matrix.

Labels are integer class indices (numpy arrays, lists or CPU tensors).
The definitions follow scikit-learn, which the tests use as the oracle:

- UA (unweighted accuracy) = mean per-class recall over the classes
  present in the targets (``balanced_accuracy_score``);
- WA (weighted accuracy) = plain accuracy (``accuracy_score``);
- macro-F1 = mean F1 over the classes present in the targets or the
  predictions, 0 for a class never predicted correctly
  (``f1_score(average="macro", zero_division=0)``).

:class:`EmotionMetricStats` accumulates them over an epoch the way
SpeechBrain's ``MetricStats`` does.

Example
-------
>>> unweighted_accuracy([0, 0, 0, 1], [0, 0, 0, 0])
0.5
>>> weighted_accuracy([0, 0, 0, 1], [0, 0, 0, 0])
0.75
"""

import numpy as np
import torch

__all__ = [
    "EmotionMetricStats",
    "confusion_matrix",
    "macro_f1",
    "mean_std",
    "unweighted_accuracy",
    "weighted_accuracy",
]

SUMMARY_FIELDS = ("UA", "WA", "macro_F1", "confusion")


def confusion_matrix(targets, predictions, n_classes):
    """Count every (true class, predicted class) pair.

    Arguments
    ---------
    targets : array-like of int
        True class indices, shape ``[N]``.
    predictions : array-like of int
        Predicted class indices, shape ``[N]``.
    n_classes : int
        Number of classes; every label must lie in ``[0, n_classes)``.

    Returns
    -------
    numpy.ndarray
        Integer matrix ``[n_classes, n_classes]``; rows are true classes,
        columns predicted classes.

    Example
    -------
    >>> confusion_matrix([0, 1, 1], [0, 0, 1], n_classes=3)
    array([[1, 0, 0],
           [1, 1, 0],
           [0, 0, 0]])
    """
    targets, predictions = _check_labels(targets, predictions, n_classes)
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (targets, predictions), 1)
    return matrix


def unweighted_accuracy(targets, predictions):
    """Mean per-class recall over the classes present in the targets (UA).

    Arguments
    ---------
    targets : array-like of int
        True class indices, shape ``[N]``.
    predictions : array-like of int
        Predicted class indices, shape ``[N]``.

    Returns
    -------
    float
        UA as a fraction in [0, 1].

    Example
    -------
    >>> unweighted_accuracy([0, 1, 1, 1], [0, 1, 0, 0])
    0.6666666666666666
    """
    matrix = _confusion(targets, predictions)
    support = matrix.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(matrix)[present] / support[present]))


def weighted_accuracy(targets, predictions):
    """Fraction of correct predictions (WA, plain accuracy).

    Arguments
    ---------
    targets : array-like of int
        True class indices, shape ``[N]``.
    predictions : array-like of int
        Predicted class indices, shape ``[N]``.

    Returns
    -------
    float
        WA as a fraction in [0, 1].

    Example
    -------
    >>> weighted_accuracy([0, 1, 1, 1], [0, 1, 0, 0])
    0.5
    """
    matrix = _confusion(targets, predictions)
    return float(np.trace(matrix) / matrix.sum())


def macro_f1(targets, predictions):
    """Mean F1 over the classes present in the targets or predictions.

    Per class, ``F1 = 2 TP / (2 TP + FP + FN)``; a class that appears but
    is never predicted correctly scores 0 (scikit-learn's
    ``zero_division=0``). Classes absent from both are ignored.

    Arguments
    ---------
    targets : array-like of int
        True class indices, shape ``[N]``.
    predictions : array-like of int
        Predicted class indices, shape ``[N]``.

    Returns
    -------
    float
        Macro-F1 as a fraction in [0, 1].

    Example
    -------
    >>> macro_f1([0, 0, 1], [0, 0, 2])  # F1 = 1, 0, 0 for classes 0, 1, 2
    0.3333333333333333
    """
    matrix = _confusion(targets, predictions)
    true_positives = np.diag(matrix)
    true_count = matrix.sum(axis=1)
    predicted_count = matrix.sum(axis=0)
    present = (true_count + predicted_count) > 0
    f1 = 2 * true_positives[present] / (true_count + predicted_count)[present]
    return float(np.mean(f1))


def mean_std(values):
    """Mean and population standard deviation (``ddof=0``) of fold scores.

    The population form describes the folds at hand rather than estimating
    a wider population; multiply by ``sqrt(K / (K - 1))`` for the sample
    form.

    Arguments
    ---------
    values : array-like of float
        One score per fold.

    Returns
    -------
    tuple of float
        ``(mean, std)``.

    Example
    -------
    >>> mean, std = mean_std([0.5, 0.7])
    >>> round(mean, 6), round(std, 6)
    (0.6, 0.1)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            "mean_std: values must be a non-empty 1-D sequence, got shape "
            f"{values.shape}"
        )
    return float(values.mean()), float(values.std(ddof=0))


class EmotionMetricStats:
    """Accumulate predictions over batches and summarise UA, WA, macro-F1.

    Works like SpeechBrain's ``MetricStats``: ``append`` each batch,
    ``summarize`` at the end of the stage, ``clear`` to start again. The
    prediction is the arg-max of the log-probabilities. ``ids``,
    ``targets`` and ``predictions`` keep every utterance in append order.

    Arguments
    ---------
    n_classes : int, optional
        Number of classes; by default the size of the last dimension of
        the first log-probabilities appended.

    Example
    -------
    >>> import torch
    >>> stats = EmotionMetricStats()
    >>> log_probabilities = torch.log(torch.tensor([[0.9, 0.1], [0.8, 0.2]]))
    >>> stats.append(["a", "b"], log_probabilities, torch.tensor([[0], [1]]))
    >>> stats.summarize("UA")
    0.5
    >>> stats.summarize()["confusion"]
    array([[1, 0],
           [1, 0]])
    """

    def __init__(self, n_classes=None):
        if n_classes is not None and (
            not isinstance(n_classes, int) or n_classes < 1
        ):
            raise ValueError(
                "EmotionMetricStats: n_classes must be a positive int or "
                f"None, got {n_classes!r}"
            )
        self.n_classes = n_classes
        self.clear()

    def clear(self):
        """Forget everything appended so far.

        Example
        -------
        >>> import torch
        >>> stats = EmotionMetricStats(n_classes=2)
        >>> stats.append(["a"], torch.zeros(1, 2), torch.tensor([1]))
        >>> stats.clear()
        >>> stats.ids
        []
        """
        self.ids = []
        self.targets = []
        self.predictions = []

    def append(self, ids, log_probabilities, targets):
        """Store the predictions of one batch.

        Arguments
        ---------
        ids : list of str
            Utterance ids, one per batch element.
        log_probabilities : torch.Tensor
            Shape ``[B, n_classes]`` or ``[B, 1, n_classes]``.
        targets : torch.Tensor
            True class indices, shape ``[B]`` or ``[B, 1]``.

        Example
        -------
        >>> import torch
        >>> stats = EmotionMetricStats()
        >>> stats.append(["a"], torch.tensor([[0.0, 1.0]]), torch.tensor([1]))
        >>> stats.predictions
        [1]
        """
        log_probabilities = _squeeze_middle(log_probabilities, 2)
        targets = _squeeze_middle(targets, 1)
        if targets.dim() != 1:
            raise ValueError(
                "EmotionMetricStats.append: targets must have shape [B] or "
                f"[B, 1], got {tuple(targets.shape)}"
            )
        if log_probabilities.dim() != 2:
            raise ValueError(
                "EmotionMetricStats.append: log_probabilities must have "
                "shape [B, n_classes] or [B, 1, n_classes], got "
                f"{tuple(log_probabilities.shape)}"
            )
        if self.n_classes is None:
            self.n_classes = log_probabilities.shape[1]
        if log_probabilities.shape[1] != self.n_classes:
            raise ValueError(
                "EmotionMetricStats.append: log_probabilities has "
                f"{log_probabilities.shape[1]} classes, expected "
                f"{self.n_classes}"
            )
        if not len(ids) == len(log_probabilities) == len(targets):
            raise ValueError(
                "EmotionMetricStats.append: got "
                f"{len(ids)} ids, {len(log_probabilities)} log_probabilities "
                f"and {len(targets)} targets; they must match"
            )
        self.ids.extend(ids)
        self.targets.extend(targets.detach().cpu().long().tolist())
        self.predictions.extend(
            log_probabilities.detach().argmax(dim=1).cpu().tolist()
        )

    def summarize(self, field=None):
        """Compute the metrics over everything appended.

        Arguments
        ---------
        field : str, optional
            One of ``"UA"``, ``"WA"``, ``"macro_F1"``, ``"confusion"``;
            None returns them all.

        Returns
        -------
        dict or float or numpy.ndarray
            ``{"UA", "WA", "macro_F1", "confusion"}`` (fractions in [0, 1]
            and the ``[n_classes, n_classes]`` confusion matrix, rows true),
            or the one field asked for.

        Example
        -------
        >>> import torch
        >>> stats = EmotionMetricStats()
        >>> stats.append(["a"], torch.tensor([[0.0, 1.0]]), torch.tensor([1]))
        >>> stats.summarize("WA")
        1.0
        """
        if field is not None and field not in SUMMARY_FIELDS:
            raise ValueError(
                f"EmotionMetricStats.summarize: unknown field {field!r}, "
                f"choose from {SUMMARY_FIELDS}"
            )
        if not self.targets:
            raise ValueError(
                "EmotionMetricStats.summarize: nothing appended yet"
            )
        summary = {
            "UA": unweighted_accuracy(self.targets, self.predictions),
            "WA": weighted_accuracy(self.targets, self.predictions),
            "macro_F1": macro_f1(self.targets, self.predictions),
            "confusion": confusion_matrix(
                self.targets, self.predictions, self.n_classes
            ),
        }
        return summary if field is None else summary[field]


def _confusion(targets, predictions):
    """Confusion matrix over classes ``0 .. max label``."""
    targets, predictions = _check_labels(targets, predictions)
    n_classes = int(max(targets.max(), predictions.max())) + 1
    return confusion_matrix(targets, predictions, n_classes)


def _check_labels(targets, predictions, n_classes=None):
    """Return both label sequences as int arrays after checking them."""
    targets = _as_label_array(targets, "targets")
    predictions = _as_label_array(predictions, "predictions")
    if targets.shape != predictions.shape:
        raise ValueError(
            f"targets has {targets.size} labels but predictions has "
            f"{predictions.size}; they must match"
        )
    if targets.size == 0:
        raise ValueError("targets and predictions are empty")
    if n_classes is not None:
        for name, labels in (
            ("targets", targets),
            ("predictions", predictions),
        ):
            if labels.max() >= n_classes:
                raise ValueError(
                    f"{name} holds class {labels.max()} but n_classes is "
                    f"{n_classes}"
                )
    return targets, predictions


def _as_label_array(labels, name):
    """A 1-D array of non-negative integer class indices."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.size == 0:
        return labels.reshape(0).astype(np.int64)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{name} must be a 1-D sequence of integer class indices, got "
            f"shape {labels.shape} and dtype {labels.dtype}"
        )
    if labels.min() < 0:
        raise ValueError(f"{name} holds a negative class index")
    return labels.astype(np.int64)


def _squeeze_middle(tensor, dim):
    """Turn SpeechBrain's ``[B, 1, ...]`` into the expected ``dim`` dims."""
    if tensor.dim() == dim + 1 and tensor.shape[1] == 1:
        return tensor.squeeze(1)
    return tensor
