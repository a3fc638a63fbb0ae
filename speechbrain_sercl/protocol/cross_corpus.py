"""Cross-corpus evaluation: a corpus's trained model tested on another.

The fold runner trains stage 2 (``classifier``) and the FT baseline
(``finetune``) on each corpus and tests them on that corpus's test part.
Here, with no training at all, the model that run ``i`` trained on a
*source* corpus classifies the test part of run ``i`` of each other
*target* corpus of the run, on the emotions both corpora share (matched by
their canonical names: ``angry`` is ``angry`` in every reader).

- A target utterance whose emotion the source model does not know (CASIA's
  ``fear`` for a model trained on IEMOCAP's four classes) is left out: it
  has no right answer.
- The model's arg-max is restricted to the shared classes: its
  probabilities of the shared classes, renormalised to sum to one, are
  written and the largest is the prediction. A class that the target does
  not have (EmoDB's ``boredom`` for a target without it) can never be
  predicted, so every error is a confusion between shared emotions.
- A pair that shares fewer than two emotions is not tested (an accuracy
  over one class says nothing).

Each test writes ``predictions.csv`` (:func:`report.write_predictions`,
the shared classes only) and ``fold_split.json`` into
:func:`layout.cross_corpus_folder`; :func:`collect_cross_corpus` recomputes
the UA on the shared classes from them, and :func:`write_cross_corpus`
writes ``cross_corpus.json`` and ``cross_corpus.md``: per method, a
source (rows) -> target (columns) table of the mean ± std UA over runs.

Example
-------
>>> restricted_prediction([0.5, 0.2, 0.3], ["fear", "happy", "sad"],
...                       ["happy", "sad"])  # fmt: skip
('sad', [0.4, 0.6])

Authors
 * speechbrain-sercl developers
"""

import os
import tempfile

import numpy as np
from tqdm import tqdm

from speechbrain_sercl import layout
from speechbrain_sercl.data.folds import select_run
from speechbrain_sercl.inference.export import export_step
from speechbrain_sercl.inference.predict import (
    class_names,
    load_classifier,
    predict_files,
)
from speechbrain_sercl.method.registry import METHODS, method_names
from speechbrain_sercl.metrics import mean_std
from speechbrain_sercl.predictions import prediction_metrics, write_predictions
from speechbrain_sercl.reporting.results import (
    write_json_and_markdown,
)

__all__ = [
    "MIN_SHARED_CLASSES",
    "collect_cross_corpus",
    "cross_corpus_markdown",
    "evaluate_run",
    "restricted_prediction",
    "shared_classes",
    "write_cross_corpus",
]

MIN_SHARED_CLASSES = 2


def shared_classes(source_classes, target_emotions):
    """The emotions a source model knows and a target corpus labels.

    Arguments
    ---------
    source_classes : iterable of str
        The source model's classes.
    target_emotions : iterable of str
        The emotions of the target corpus.

    Returns
    -------
    list of str
        Their intersection, sorted (the class order of the predictions).

    Example
    -------
    >>> iemocap = ["angry", "happy", "neutral", "sad"]
    >>> casia = ["angry", "fear", "happy", "neutral", "sad", "surprise"]
    >>> shared_classes(iemocap, casia)
    ['angry', 'happy', 'neutral', 'sad']
    """
    return sorted(set(source_classes) & set(target_emotions))


def restricted_prediction(probabilities, classes, shared):
    """The prediction of a model restricted to the shared classes.

    Arguments
    ---------
    probabilities : sequence of float
        The model's probabilities, one per class of ``classes``.
    classes : list of str
        The model's classes, in index order.
    shared : list of str
        The classes it may predict (a subset of ``classes``).

    Returns
    -------
    predicted : str
        The shared class of largest probability.
    renormalised : list of float
        The probabilities of ``shared`` (in its order) divided by their sum
        (uniform if they are all zero).

    Example
    -------
    >>> restricted_prediction([0.7, 0.1, 0.2], ["fear", "sad", "angry"],
    ...                       ["angry", "sad"])  # fmt: skip
    ('angry', [0.6666666666666666, 0.3333333333333333])
    """
    index = {name: i for i, name in enumerate(classes)}
    kept = np.array([probabilities[index[name]] for name in shared], float)
    total = kept.sum()
    kept = kept / total if total > 0 else np.full(len(shared), 1 / len(shared))
    return shared[int(np.argmax(kept))], kept.tolist()


def evaluate_run(
    experiment_folder, protocol, run, prepared, methods, run_opts=None
):
    """Test each trained step of run ``run`` on the other corpora.

    For each method of ``methods`` that is tested here (``classifier``,
    ``finetune``) and each ordered pair of corpora sharing at least
    :data:`MIN_SHARED_CLASSES` emotions, the source's finished step of the
    run classifies the target's test part of the run (the utterances of
    the shared emotions). A pair whose predictions exist is skipped, so a
    rerun resumes; a source step that has not finished is skipped.

    Arguments
    ---------
    experiment_folder : str
        The experiment's root.
    protocol : str
        The fold protocol.
    run : int
        The run index.
    prepared : dict
        corpus -> (manifest path, ``{utt_id: fold}``): the corpora tested
        in this run.
    methods : iterable of str
        The runner's methods (others than ``classifier`` and ``finetune``
        are ignored).
    run_opts : dict, optional
        SpeechBrain run options of the loaded models (``{"device": ...}``).

    Returns
    -------
    list of str
        The prediction files written (not those found).
    """
    written = []
    steps = [
        (method, source)
        for method in methods
        if method in method_names(cross_corpus=True)
        for source in prepared
    ]
    for method, source in tqdm(steps, desc=f"cross-corpus, run {run}"):
        step = layout.step_folder(
            experiment_folder, protocol, run, method, source
        )
        if not os.path.exists(layout.finished_file(step, run)):
            continue
        todo = {
            target: layout.cross_corpus_folder(
                experiment_folder, protocol, run, method, source, target
            )
            for target in prepared
            if target != source
        }
        todo = {
            target: folder
            for target, folder in todo.items()
            if not os.path.exists(
                layout.step_file(folder, layout.PREDICTIONS_FILE)
            )
        }
        if todo:
            written += _test_step(step, todo, run, prepared, run_opts)
    return written


def _test_step(step, folders, run, prepared, run_opts):
    """Classify the test parts of the targets (``{target: folder}``) with
    one step, exported and loaded as users load it."""
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        model = export_step(step, os.path.join(scratch, "model"))
        classifier = load_classifier(
            model, savedir=os.path.join(scratch, "loaded"), run_opts=run_opts
        )
        classes = class_names(classifier)
        for target, folder in folders.items():
            os.makedirs(folder, exist_ok=True)
            split = select_run({target: prepared[target]}, run, folder)
            emotions = {entry["emotion"] for entry in split.manifest.values()}
            shared = shared_classes(classes, emotions)
            entries = [
                (utt_id, split.manifest[utt_id])
                for utt_id in split.test(target)
                if split.manifest[utt_id]["emotion"] in shared
            ]
            if len(shared) < MIN_SHARED_CLASSES or not entries:
                continue
            rows = _rows(classifier, classes, shared, entries)
            path = layout.step_file(folder, layout.PREDICTIONS_FILE)
            written.append(write_predictions(path, shared, rows))
    return written


def _rows(classifier, classes, shared, entries):
    """The prediction rows of the target utterances ``entries``."""
    files = [entry["wav"] for _, entry in entries]
    rows = []
    for (utt_id, entry), result in zip(
        entries, predict_files(classifier, files), strict=True
    ):
        if result.error is not None:
            raise RuntimeError(f"cross-corpus test of {utt_id}: {result.error}")
        predicted, probabilities = restricted_prediction(
            result.probabilities, classes, shared
        )
        rows.append({
            "id": utt_id,
            "corpus": entry["corpus"],
            "speaker": entry["speaker"],
            "emotion": entry["emotion"],
            "predicted": predicted,
            "probabilities": probabilities,
        })  # fmt: skip
    return rows


def collect_cross_corpus(protocol_folder, steps=None):
    """Gather the cross-corpus tests of a protocol.

    Each test's UA (on its shared classes) is recomputed from its
    ``predictions.csv``.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.
    steps : collection of str, optional
        Only these test folders (those whose records match the current
        data and settings: :func:`speechbrain_sercl.step_records.
        checked_steps`, as the command line does); by default every one,
        unchecked.

    Returns
    -------
    dict
        method -> source -> target -> {"folds": {i: {"UA", "n"}},
        "mean": UA, "std": UA, "classes": the shared classes}; empty when
        nothing was tested across corpora.

    Example
    -------
    >>> import pathlib
    >>> root = pathlib.Path(getfixture("tmp_path")) / "exp" / "paper"
    >>> row = {"id": "u1", "corpus": "b", "speaker": "s", "emotion": "sad",
    ...        "predicted": "sad", "probabilities": [0.3, 0.7]}  # fmt: skip
    >>> for fold, predicted in ((0, "sad"), (1, "angry")):
    ...     folder = layout.cross_corpus_folder(
    ...         root.parent, "paper", fold, "classifier", "a", "b"
    ...     )
    ...     os.makedirs(folder)
    ...     path = layout.step_file(folder, layout.PREDICTIONS_FILE)
    ...     row["predicted"] = predicted
    ...     _ = write_predictions(path, ["angry", "sad"], [row])
    >>> pair = collect_cross_corpus(root)["classifier"]["a"]["b"]
    >>> pair["mean"], pair["std"], pair["classes"]
    (0.5, 0.5, ['angry', 'sad'])
    """
    experiment, protocol = os.path.split(os.path.normpath(protocol_folder))
    root = layout.cross_corpus_folder(experiment, protocol)
    found = {}
    for fold_name in layout.subfolders(root):
        run = layout.run_of_folder(fold_name)
        if run is None:
            continue
        for source in layout.subfolders(os.path.join(root, fold_name)):
            for target in layout.subfolders(
                os.path.join(root, fold_name, source)
            ):
                for method in method_names(cross_corpus=True):
                    folder = layout.cross_corpus_folder(
                        experiment, protocol, run, method, source, target
                    )
                    if steps is not None and folder not in steps:
                        continue
                    path = layout.step_file(folder, layout.PREDICTIONS_FILE)
                    if os.path.exists(path):
                        pairs = found.setdefault(method, {})
                        by_fold = pairs.setdefault(source, {})
                        by_fold = by_fold.setdefault(target, {})
                        by_fold[run] = prediction_metrics(path)
    return {
        method: {
            source: {
                target: _summarise(folds) for target, folds in targets.items()
            }
            for source, targets in sources.items()
        }
        for method, sources in found.items()
    }


def _summarise(folds):
    """Per-run UA and utterance counts, their mean and std, the classes."""
    classes = {tuple(metrics["classes"]) for metrics in folds.values()}
    if len(classes) != 1:
        raise ValueError(f"the runs do not share classes: {sorted(classes)}")
    summary = {
        "folds": {
            run: {"UA": metrics["UA"], "n": metrics["n"]}
            for run, metrics in sorted(folds.items())
        },
        "classes": list(classes.pop()),
    }
    scores = [metrics["UA"] for metrics in summary["folds"].values()]
    summary["mean"], summary["std"] = mean_std(scores)
    return summary


def write_cross_corpus(protocol_folder, steps=None):
    """Write ``cross_corpus.json`` and ``cross_corpus.md``, if anything was
    tested across corpora.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.
    steps : collection of str, optional
        As for :func:`collect_cross_corpus`.

    Returns
    -------
    list of str
        The files written (none when there is no cross-corpus test).
    """
    results = collect_cross_corpus(protocol_folder, steps)
    if not results:
        return []
    experiment, protocol = os.path.split(os.path.normpath(protocol_folder))
    folder = layout.cross_corpus_folder(experiment, protocol)
    return write_json_and_markdown(
        results,
        cross_corpus_markdown(results),
        os.path.join(folder, layout.CROSS_CORPUS_JSON),
        os.path.join(folder, layout.CROSS_CORPUS_MARKDOWN),
    )


def cross_corpus_markdown(results):
    """Source -> target tables of UA (%) as Markdown, one per method.

    Arguments
    ---------
    results : dict
        From :func:`collect_cross_corpus`.

    Returns
    -------
    str
        The Markdown text.

    Example
    -------
    >>> pair = {"folds": {0: {"UA": 0.5, "n": 8}}, "mean": 0.5, "std": 0.0,
    ...         "classes": ["angry", "sad"]}  # fmt: skip
    >>> print(cross_corpus_markdown({"classifier": {"a": {"b": pair}}}))
    ... # doctest: +NORMALIZE_WHITESPACE
    # Cross-corpus results
    <BLANKLINE>
    UA (%) on the emotions the two corpora share, mean ± population
    standard deviation over runs (runs): the model trained on the source
    corpus (row) in run i classifies the test part of run i of the target
    corpus (column), without retraining, choosing among the shared
    emotions only. Same-corpus results are in results.md.
    <BLANKLINE>
    ## two-stage contrastive (stage 2)
    <BLANKLINE>
    | source \\ target | b |
    |---|---|
    | a | 50.00 ± 0.00 (1) |
    <BLANKLINE>
    Shared emotions: a -> b: angry, sad.
    <BLANKLINE>
    """
    lines = [
        "# Cross-corpus results",
        "",
        "UA (%) on the emotions the two corpora share, mean ± population "
        "standard deviation over runs (runs): the model trained on the "
        "source corpus (row) in run i classifies the test part of run i of "
        "the target corpus (column), without retraining, choosing among the "
        "shared emotions only. Same-corpus results are in results.md.",
    ]
    for method in method_names(cross_corpus=True):
        if method not in results:
            continue
        sources = results[method]
        targets = sorted({t for pairs in sources.values() for t in pairs})
        lines += ["", f"## {METHODS[method].display_name}", ""]
        lines.append("| source \\ target | " + " | ".join(targets) + " |")
        lines.append("|---|" + "---|" * len(targets))
        for source, pairs in sorted(sources.items()):
            cells = [_cell(pairs.get(target)) for target in targets]
            lines.append(f"| {source} | " + " | ".join(cells) + " |")
        shared = [
            f"{source} -> {target}: {', '.join(pair['classes'])}"
            for source, pairs in sorted(sources.items())
            for target, pair in sorted(pairs.items())
        ]
        lines += ["", "Shared emotions: " + "; ".join(shared) + "."]
    lines.append("")
    return "\n".join(lines)


def _cell(pair):
    """One table cell: mean ± std (runs), or a dash."""
    if pair is None:
        return "-"
    return (
        f"{100 * pair['mean']:.2f} ± {100 * pair['std']:.2f} "
        f"({len(pair['folds'])})"
    )
