"""The files ``sercl predict`` reads and writes.

:func:`collect_audio_files` turns command-line inputs (audio files,
folders, ``.txt`` or ``.csv`` lists) into a list of audio files;
:func:`write_predictions` writes what
:func:`speechbrain_sercl.inference.predict.predict_files` returns: one row per
file, ``file, emotion, score`` (the top class and its probability),
``p_<class>`` for every class (the label encoder's names, as in the
training ``predictions.csv``), then ``status`` (``ok`` or ``error``) and
``error``. CSV (standard output when no file is given) or JSON (a list of
the rows as objects, empty cells as ``null``, where a windowed file holds
its timeline in ``chunks``). A CSV output ``<stem>.csv`` has the
timelines in ``<stem>_chunks.csv``: ``file, start, end`` (seconds),
``emotion, score`` and ``p_<class>`` per window.

Example
-------
>>> from speechbrain_sercl.inference.predict import FilePrediction
>>> folder = getfixture("tmp_path")
>>> predictions = [FilePrediction(str(folder / "a.wav"), (0.2, 0.8))]
>>> paths = write_predictions(predictions, ["sad", "angry"], folder / "p.json")
>>> print((folder / "p.json").read_text())
[
  {
    "file": ".../a.wav",
    "emotion": "angry",
    "score": 0.8,
    "p_sad": 0.2,
    "p_angry": 0.8,
    "status": "ok",
    "error": null
  }
]
<BLANKLINE>

Authors
 * speechbrain-sercl developers
"""

import csv
import json
import logging
import os
import sys
from contextlib import contextmanager

import numpy as np
import soundfile as sf

from speechbrain_sercl.atomic import writing_atomically
from speechbrain_sercl.predictions import PROBABILITY_PREFIX

__all__ = [
    "AUDIO_EXTENSIONS",
    "chunks_path",
    "collect_audio_files",
    "output_format",
    "write_predictions",
]

logger = logging.getLogger(__name__)

# Folder scans pick these extensions, among those soundfile reads here.
_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
AUDIO_EXTENSIONS = tuple(
    extension
    for extension, name in _FORMATS.items()
    if name in sf.available_formats()
)
LIST_EXTENSIONS = (".txt", ".csv")
LIST_COLUMNS = ("file", "path")
OUTPUT_FORMATS = {".csv": "csv", ".json": "json"}
CHUNKS_SUFFIX = "_chunks"
# The output columns, ``p_<class>`` for every class coming after ``score``.
FILE_COLUMNS = ("file", "emotion", "score", "status", "error")
CHUNK_COLUMNS = ("file", "start", "end", "emotion", "score")


def collect_audio_files(inputs):
    """The audio files named by files, folders and lists of files.

    Arguments
    ---------
    inputs : iterable of str or os.PathLike
        Each is a folder (its audio files, recursively, with an extension
        of :data:`AUDIO_EXTENSIONS`; hidden files and folders, such as
        macOS ``._`` files, are skipped), a list (``.txt``: one path per
        line, blank lines and ``#`` comments skipped; ``.csv``: the
        ``file`` or ``path`` column), where relative paths are relative to
        the list's folder, or else an audio file (kept even if it does not
        exist: it is reported when predicted).

    Returns
    -------
    list of str
        The files, in input order (folders sorted), each once.

    Raises
    ------
    FileNotFoundError
        If a list does not exist.
    ValueError
        If a CSV list has neither a ``file`` nor a ``path`` column.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> for name in ["b.wav", "a.flac", "._a.wav", ".hidden.wav", "n.txt"]:
    ...     _ = (folder / name).write_text("")
    >>> _ = (folder / "list.txt").write_text("b.wav\\n# comment\\n\\nc.wav\\n")
    >>> [os.path.basename(f) for f in collect_audio_files([folder])]
    ['a.flac', 'b.wav']
    >>> [
    ...     os.path.basename(f)
    ...     for f in collect_audio_files([folder / "list.txt"])
    ... ]
    ['b.wav', 'c.wav']
    """
    files = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            files += _folder_audio(item)
        elif item.lower().endswith(LIST_EXTENSIONS):
            files += _listed_files(item)
        else:
            files.append(item)
    return list(dict.fromkeys(files))


def _folder_audio(folder):
    """The audio files under ``folder``, recursively, hidden ones left out."""
    found = []
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(
            name for name in folders if not name.startswith(".")
        )
        found += [
            os.path.join(root, name)
            for name in sorted(names)
            if not name.startswith(".")
            and name.lower().endswith(AUDIO_EXTENSIONS)
        ]
    return found


def _listed_files(path):
    """The files of a ``.txt`` or ``.csv`` list, relative to its folder."""
    with open(path, encoding="utf-8", newline="") as stream:
        if path.lower().endswith(".csv"):
            entries = _csv_column(path, csv.DictReader(stream))
        else:
            entries = [line.strip() for line in stream]
            entries = [e for e in entries if not e.startswith("#")]
    folder = os.path.dirname(path)
    return [
        os.path.join(folder, os.path.expanduser(entry))
        for entry in entries
        if entry
    ]


def _csv_column(path, reader):
    """The cells of the ``file`` (or else ``path``) column of a CSV list."""
    columns = reader.fieldnames or []
    for column in LIST_COLUMNS:
        if column in columns:
            return [(row[column] or "").strip() for row in reader]
    raise ValueError(
        f"{path}: a list of files needs a 'file' or 'path' column "
        f"(columns: {', '.join(columns) or 'none'})"
    )


def output_format(output):
    """The format of an output path: ``"csv"`` (also for None) or ``"json"``.

    Example
    -------
    >>> output_format("out.JSON"), output_format(None)
    ('json', 'csv')
    >>> output_format("out.txt")
    Traceback (most recent call last):
    ...
    ValueError: out.txt: the output must end in .csv or .json
    """
    if output is None:
        return "csv"
    extension = os.path.splitext(os.fspath(output))[1].lower()
    if extension not in OUTPUT_FORMATS:
        raise ValueError(
            f"{os.fspath(output)}: the output must end in "
            f"{' or '.join(OUTPUT_FORMATS)}"
        )
    return OUTPUT_FORMATS[extension]


def chunks_path(output):
    """Where a CSV output's timelines go: ``<stem>_chunks.csv``.

    Example
    -------
    >>> chunks_path("results/out.csv")
    'results/out_chunks.csv'
    """
    stem, extension = os.path.splitext(os.fspath(output))
    return f"{stem}{CHUNKS_SUFFIX}{extension}"


def write_predictions(predictions, classes, output=None):
    """Write predictions as CSV or JSON (chosen by the extension).

    Arguments
    ---------
    predictions : list of FilePrediction
        What :func:`speechbrain_sercl.inference.predict.predict_files` returned.
    classes : list of str
        The class names in index order
        (:func:`speechbrain_sercl.inference.predict.class_names`).
    output : str or os.PathLike, optional
        ``.csv`` or ``.json`` (its folder is created); CSV on standard
        output when None (without the timelines of windowed files: a
        warning says so).

    Returns
    -------
    list
        The paths written (a CSV output is followed by its
        :func:`chunks_path` when a file was windowed).

    Example
    -------
    >>> from speechbrain_sercl.inference.predict import FilePrediction
    >>> path = getfixture("tmp_path") / "out.csv"
    >>> predictions = [
    ...     FilePrediction("a.wav", (0.25, 0.75)),
    ...     FilePrediction("b.wav", error="b.wav: unreadable audio"),
    ... ]
    >>> write_predictions(predictions, ["sad", "angry"], path)
    [PosixPath('.../out.csv')]
    >>> print(path.read_text(), end="")
    file,emotion,score,p_sad,p_angry,status,error
    a.wav,angry,0.75,0.25,0.75,ok,
    b.wav,,,,,error,b.wav: unreadable audio
    """
    form = output_format(output)
    classes = [str(name) for name in classes]
    for prediction in predictions:
        _check_classes(prediction, classes)
    if output is None:
        _write_csv(
            sys.stdout,
            _columns(FILE_COLUMNS, classes),
            _rows(predictions, classes),
        )
        windowed = sum(p.chunks is not None for p in predictions)
        if windowed:
            logger.warning(
                "The timelines of %d long file(s) are not written to standard "
                "output: give an output file",
                windowed,
            )
        return []
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    if form == "json":
        return _write_json_output(output, predictions, classes)
    return _write_csv_output(output, predictions, classes)


def _write_json_output(output, predictions, classes):
    """The rows as a JSON list; a windowed file's row holds ``chunks``."""
    rows = _rows(predictions, classes)
    for row, prediction in zip(rows, predictions, strict=True):
        if prediction.chunks is not None:
            row["chunks"] = [
                {key: chunk[key] for key in chunk if key != "file"}
                for chunk in _chunk_rows(prediction, classes)
            ]
    with _writing_atomically(output) as stream:
        json.dump(rows, stream, indent=2)
        stream.write("\n")
    return [output]


def _write_csv_output(output, predictions, classes):
    """The rows as CSV, and the timelines next to it when there are any."""
    with _writing_atomically(output) as stream:
        _write_csv(
            stream, _columns(FILE_COLUMNS, classes), _rows(predictions, classes)
        )
    windowed = [p for p in predictions if p.chunks is not None]
    if not windowed:
        return [output]
    path = type(output)(chunks_path(output))
    with _writing_atomically(path) as stream:
        _write_csv(
            stream,
            _columns(CHUNK_COLUMNS, classes),
            (row for p in windowed for row in _chunk_rows(p, classes)),
        )
    return [output, path]


def _columns(columns, classes):
    """Columns with ``p_<class>`` for every class after ``score``."""
    at = columns.index("score") + 1
    probabilities = [f"{PROBABILITY_PREFIX}{name}" for name in classes]
    return [*columns[:at], *probabilities, *columns[at:]]


def _check_classes(prediction, classes):
    """Raise ValueError when a prediction's probabilities do not fit."""
    found = prediction.probabilities
    if found is not None and len(found) != len(classes):
        raise ValueError(
            f"{prediction.file}: {len(found)} probabilities for "
            f"{len(classes)} classes"
        )


def _scored(probabilities, classes):
    """``emotion``, ``score`` and the ``p_<class>`` columns of a row."""
    if probabilities is None:
        empty = [None] * len(classes)
        probabilities, emotion, score = empty, None, None
    else:
        top = int(np.argmax(probabilities))
        emotion, score = classes[top], probabilities[top]
    row = {"emotion": emotion, "score": score}
    row.update(
        (f"{PROBABILITY_PREFIX}{name}", value)
        for name, value in zip(classes, probabilities, strict=True)
    )
    return row


def _rows(predictions, classes):
    """The output row of every file."""
    return [
        {
            "file": prediction.file,
            **_scored(prediction.probabilities, classes),
            "status": "ok" if prediction.error is None else "error",
            "error": prediction.error,
        }
        for prediction in predictions
    ]


def _chunk_rows(prediction, classes):
    """The timeline rows of a windowed file."""
    return [
        {
            "file": prediction.file,
            "start": chunk.start,
            "end": chunk.end,
            **_scored(chunk.probabilities, classes),
        }
        for chunk in prediction.chunks
    ]


@contextmanager
def _writing_atomically(path):
    """A text stream to a file that replaces ``path`` when the block ends."""
    with writing_atomically(path) as tmp_path:
        with open(tmp_path, "w", encoding="utf-8", newline="") as stream:
            yield stream


def _write_csv(stream, columns, rows):
    """A header, then the rows (empty cells for None)."""
    writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
