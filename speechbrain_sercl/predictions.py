"""The ``predictions.csv`` format: one row per test utterance.

Every test step writes its predictions in this format (columns
:data:`PREDICTION_COLUMNS`, then ``p_<class>`` for every class), and every
table and figure is computed from these files again
(:func:`prediction_metrics`), never from numbers a step reported.

Authors
 * speechbrain-sercl developers
"""

import csv

from speechbrain_sercl.atomic import writing_atomically
from speechbrain_sercl.metrics import (
    confusion_matrix,
    macro_f1,
    unweighted_accuracy,
    weighted_accuracy,
)

__all__ = [
    "PREDICTION_COLUMNS",
    "PROBABILITY_PREFIX",
    "prediction_metrics",
    "read_predictions",
    "write_predictions",
]

# The columns of predictions.csv before one ``p_<class>`` column per class.
PREDICTION_COLUMNS = ("id", "corpus", "speaker", "emotion", "predicted")
PROBABILITY_PREFIX = "p_"


def write_predictions(path, classes, rows):
    """Write the predictions of a test step as CSV, atomically.

    Columns: ``id, corpus, speaker, emotion`` (the true class),
    ``predicted``, then ``p_<class>`` for every class in ``classes``
    order (the label encoder's index order).

    Arguments
    ---------
    path : str
        The CSV to write (``predictions.csv``).
    classes : list of str
        Class names in index order.
    rows : iterable of dict
        One per utterance: ``id``, ``corpus``, ``speaker``, ``emotion``,
        ``predicted`` (class names for the last two) and ``probabilities``
        (one per class, in ``classes`` order).

    Returns
    -------
    str
        ``path``.

    Example
    -------
    >>> path = getfixture("tmp_path") / "predictions.csv"
    >>> row = {
    ...     "id": "u1",
    ...     "corpus": "c",
    ...     "speaker": "s1",
    ...     "emotion": "sad",
    ...     "predicted": "sad",
    ...     "probabilities": [0.25, 0.75],
    ... }
    >>> _ = write_predictions(path, ["angry", "sad"], [row])
    >>> print(path.read_text(), end="")
    id,corpus,speaker,emotion,predicted,p_angry,p_sad
    u1,c,s1,sad,sad,0.25,0.75
    """
    classes = [str(name) for name in classes]
    if len(set(classes)) != len(classes):
        raise ValueError(f"write_predictions: repeated classes {classes}")
    header = [*PREDICTION_COLUMNS]
    header += [f"{PROBABILITY_PREFIX}{name}" for name in classes]
    seen = set()
    with writing_atomically(path) as tmp_path:
        with open(tmp_path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                _check_row(row, classes, seen)
                writer.writerow(
                    [str(row[column]) for column in PREDICTION_COLUMNS]
                    + [float(p) for p in row["probabilities"]]
                )
    return path


def _check_row(row, classes, seen):
    """Refuse a repeated id, an unknown class or a wrong probability count."""
    if row["id"] in seen:
        raise ValueError(f"write_predictions: utterance {row['id']!r} twice")
    seen.add(row["id"])
    for column in ("emotion", "predicted"):
        if row[column] not in classes:
            raise ValueError(
                f"write_predictions: {row['id']!r} has {column} "
                f"{row[column]!r}, not one of {classes}"
            )
    if len(row["probabilities"]) != len(classes):
        raise ValueError(
            f"write_predictions: {row['id']!r} has "
            f"{len(row['probabilities'])} probabilities for "
            f"{len(classes)} classes"
        )


def read_predictions(path):
    """Read a ``predictions.csv``.

    Arguments
    ---------
    path : str
        The CSV that :func:`write_predictions` wrote.

    Returns
    -------
    classes : list of str
        The class names, in the order of the ``p_<class>`` columns.
    rows : list of dict
        One per utterance, as given to :func:`write_predictions`
        (probabilities as floats).

    Example
    -------
    >>> path = getfixture("tmp_path") / "predictions.csv"
    >>> header = "id,corpus,speaker,emotion,predicted,p_b,p_a"
    >>> _ = path.write_text(header + "\\nu1,c,s1,a,b,0.6,0.4\\n")
    >>> classes, rows = read_predictions(path)
    >>> classes, rows[0]["predicted"], rows[0]["probabilities"]
    (['b', 'a'], 'b', [0.6, 0.4])
    """
    with open(path, encoding="utf-8", newline="") as csv_file:
        reader = csv.reader(csv_file)
        header = next(reader, None)
        fixed = len(PREDICTION_COLUMNS)
        if header is None or tuple(header[:fixed]) != PREDICTION_COLUMNS:
            raise ValueError(
                f"{path}: the header must start with "
                f"{','.join(PREDICTION_COLUMNS)}, got {header}"
            )
        probability_columns = header[fixed:]
        bad = [
            name
            for name in probability_columns
            if not name.startswith(PROBABILITY_PREFIX)
        ]
        if bad or not probability_columns:
            raise ValueError(
                f"{path}: expected {PROBABILITY_PREFIX}<class> columns after "
                f"{PREDICTION_COLUMNS[-1]}, got {probability_columns}"
            )
        classes = [
            name[len(PROBABILITY_PREFIX) :] for name in probability_columns
        ]
        rows = []
        for line, values in enumerate(reader, start=2):
            if len(values) != len(header):
                raise ValueError(
                    f"{path}, line {line}: {len(values)} fields, "
                    f"expected {len(header)}"
                )
            row = dict(zip(PREDICTION_COLUMNS, values[:fixed], strict=True))
            row["probabilities"] = [float(p) for p in values[fixed:]]
            rows.append(row)
    return classes, rows


def prediction_metrics(path):
    """UA, WA, macro-F1 and the confusion matrix of a ``predictions.csv``.

    Arguments
    ---------
    path : str
        The CSV that :func:`write_predictions` wrote.

    Returns
    -------
    dict
        ``UA``, ``WA``, ``macro_F1`` (fractions), ``confusion`` (rows true,
        columns predicted, in class order), ``classes`` (the order of the
        ``p_<class>`` columns) and ``n`` (the number of utterances).

    Example
    -------
    >>> path = getfixture("tmp_path") / "predictions.csv"
    >>> _ = path.write_text(
    ...     "id,corpus,speaker,emotion,predicted,p_a,p_b\\n"
    ...     "u1,c,s1,a,a,0.9,0.1\\n"
    ...     "u2,c,s1,b,a,0.8,0.2\\n"
    ...     "u3,c,s2,b,b,0.3,0.7\\n"
    ... )
    >>> metrics = prediction_metrics(path)
    >>> metrics["UA"], metrics["confusion"], metrics["classes"]
    (0.75, [[1, 0], [1, 1]], ['a', 'b'])
    """
    classes, rows = read_predictions(path)
    if not rows:
        raise ValueError(f"{path}: no predictions")
    index = {name: i for i, name in enumerate(classes)}
    labels = {"emotion": [], "predicted": []}
    for row in rows:
        for column, values in labels.items():
            if row[column] not in index:
                raise ValueError(
                    f"{path}: {row['id']!r} has {column} {row[column]!r}, "
                    f"not one of {classes}"
                )
            values.append(index[row[column]])
    targets, predictions = labels["emotion"], labels["predicted"]
    matrix = confusion_matrix(targets, predictions, len(classes))
    return {
        "UA": unweighted_accuracy(targets, predictions),
        "WA": weighted_accuracy(targets, predictions),
        "macro_F1": macro_f1(targets, predictions),
        "confusion": matrix.tolist(),
        "classes": classes,
        "n": len(rows),
    }
