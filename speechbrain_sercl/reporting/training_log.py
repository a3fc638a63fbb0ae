"""Reading SpeechBrain's ``train_log.txt`` back into numbers.

``FileTrainLogger`` writes one line per epoch: the epoch's own values, then
one group per dataset, groups separated by `` - ``::

    epoch: 1, lr: 5.00e-03 - train loss: 2.74, train contrastive: 2.26
    epoch: 2, lr: 5.00e-03 - train loss: 1.79 - valid loss: 1.5, valid UA: 0.6
    Epoch loaded: 2 - test loss: 1.62, test UA: 7.50e-01

:func:`read_train_log` gives each line as a :class:`LogLine`;
:func:`epoch_curves` turns the epoch lines into one curve per value
(``"train loss"``, ``"valid UA"``, ...), which the training-curve figure
plots.

Example
-------
>>> path = getfixture("tmp_path") / "train_log.txt"
>>> _ = path.write_text(
...     "epoch: 1, lr: 5.00e-03 - train loss: 2.74\\n"
...     "epoch: 2, lr: 5.00e-03 - train loss: 1.79\\n"
... )
>>> epoch_curves(read_train_log(path))["train loss"]
([1, 2], [2.74, 1.79])
"""

import dataclasses

__all__ = ["LogLine", "epoch_curves", "read_train_log", "last_test_values"]

_GROUP_SEPARATOR = " - "
_ITEM_SEPARATOR = ", "
_TEST_EPOCH_KEY = "Epoch loaded"


@dataclasses.dataclass
class LogLine:
    """One line of a training log.

    Arguments
    ---------
    header : dict
        The values before the first dataset group (``epoch``, ``lr``, or
        ``Epoch loaded`` on a test line).
    values : dict
        ``"<dataset> <name>"`` -> value (``"train loss"``, ``"test UA"``).
    """

    header: dict
    values: dict


def read_train_log(path):
    """Every line of a ``train_log.txt``.

    Arguments
    ---------
    path : str or os.PathLike
        The log.

    Returns
    -------
    list of LogLine
        In file order (blank lines skipped).

    Raises
    ------
    ValueError
        Naming the file and line of an item that is not ``key: number``.

    Example
    -------
    >>> path = getfixture("tmp_path") / "train_log.txt"
    >>> _ = path.write_text("Epoch loaded: 3 - test loss: 1.2, test UA: 0.5\\n")
    >>> line = read_train_log(path)[0]
    >>> line.header, line.values
    ({'Epoch loaded': 3.0}, {'test loss': 1.2, 'test UA': 0.5})
    >>> _ = path.write_text("epoch: 1 - train loss: high\\n")
    >>> read_train_log(path)
    Traceback (most recent call last):
    ...
    ValueError: .../train_log.txt, line 1: 'train loss: high' is not ...
    """
    lines = []
    with open(path, encoding="utf-8") as log:
        for number, text in enumerate(log, start=1):
            if text.strip():
                lines.append(
                    _parse_line(text.strip(), f"{path}, line {number}")
                )
    return lines


def _parse_line(text, where):
    """A :class:`LogLine` from one line of text."""
    header, *groups = text.split(_GROUP_SEPARATOR)
    values = {}
    for group in groups:
        values.update(_parse_items(group, where))
    return LogLine(_parse_items(header, where), values)


def _parse_items(group, where):
    """``{key: float}`` of ``key: value, key: value``."""
    items = {}
    for item in group.split(_ITEM_SEPARATOR):
        key, _, value = item.rpartition(": ")
        try:
            items[key] = float(value)
        except ValueError:
            key = ""
        if not key:
            raise ValueError(
                f"{where}: {item!r} is not 'name: number' (a line of "
                "SpeechBrain's FileTrainLogger is expected)"
            )
    return items


def epoch_curves(lines):
    """One curve per logged value, over the epoch lines.

    Arguments
    ---------
    lines : list of LogLine
        From :func:`read_train_log`.

    Returns
    -------
    dict
        ``"<dataset> <name>"`` -> (epochs, values), in log order. A
        resumed run that logged an epoch twice keeps the later value.

    Example
    -------
    >>> lines = [
    ...     LogLine({"epoch": 1.0}, {"train loss": 3.0}),
    ...     LogLine({"epoch": 1.0}, {"train loss": 2.0}),
    ...     LogLine({"epoch": 2.0}, {"train loss": 1.0, "valid UA": 0.5}),
    ... ]
    >>> epoch_curves(lines)
    {'train loss': ([1, 2], [2.0, 1.0]), 'valid UA': ([2], [0.5])}
    """
    points = {}
    for line in lines:
        if "epoch" not in line.header:
            continue
        for name, value in line.values.items():
            points.setdefault(name, {})[int(line.header["epoch"])] = value
    return {
        name: (sorted(by_epoch), [by_epoch[e] for e in sorted(by_epoch)])
        for name, by_epoch in points.items()
    }


def last_test_values(lines):
    """The values of the last test line and the epoch it tested.

    Arguments
    ---------
    lines : list of LogLine
        From :func:`read_train_log`.

    Returns
    -------
    tuple
        (epoch, ``{"test <name>": value}``), or (None, {}) without a test
        line.

    Example
    -------
    >>> lines = [
    ...     LogLine({"epoch": 1.0}, {"train loss": 3.0}),
    ...     LogLine({"Epoch loaded": 1.0}, {"test UA": 0.7}),
    ... ]
    >>> last_test_values(lines)
    (1, {'test UA': 0.7})
    """
    tested = [line for line in lines if _TEST_EPOCH_KEY in line.header]
    if not tested:
        return None, {}
    return int(tested[-1].header[_TEST_EPOCH_KEY]), tested[-1].values
