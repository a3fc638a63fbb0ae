"""Results of a cross-validation protocol: predictions and tables.

Every downstream test step writes ``predictions.csv`` (one row per test
utterance, see :mod:`speechbrain_sercl.predictions`) in its folder
``<experiment>/<protocol>/fold_<i>/<corpus>/<method>/``.
:func:`collect_results` recomputes each step's UA, WA, macro-F1 and
confusion matrix from those rows and gathers them into ``results.json``
(per fold and mean / std of UA, WA and macro-F1, summed confusion
matrices), ``results.md`` (the same as tables a person reads); the
confusion-matrix plots and the rest of the report are
:mod:`speechbrain_sercl.reporting.report`'s.

Authors
 * speechbrain-sercl developers
"""

import json
import os

import numpy as np

from speechbrain_sercl import layout
from speechbrain_sercl.method.registry import METHODS, method_names
from speechbrain_sercl.metrics import mean_std
from speechbrain_sercl.predictions import prediction_metrics

__all__ = [
    "METRIC_NAMES",
    "collect_results",
    "write_json_and_markdown",
    "write_results",
]

METRIC_NAMES = ("UA", "WA", "macro_F1")


def collect_results(protocol_folder, steps=None):
    """Gather the test results of every fold, corpus and method.

    Only the ``fold_<i>`` folders count: the final run (trained on all
    the data, never tested) is no fold. Each step's metrics are recomputed
    from its ``predictions.csv``. A step that finished (it has
    ``test_metrics.json``) without predictions is an error: it was written
    before predictions were kept, so test it again.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``, holding ``fold_<i>`` folders.
    steps : dict, optional
        step folder -> its ``trained_as`` digest: only these steps are
        gathered (those whose records match the current data and settings:
        :func:`speechbrain_sercl.step_records.checked_steps`, as the
        command line does), and each summary says how they were made
        (``trained_as``). By default every step folder, unchecked.

    Returns
    -------
    dict
        corpus -> method -> {"folds": {i: metrics}, "mean": {...},
        "std": {...}, "confusion": summed matrix, "classes": names, and
        with ``steps``, "trained_as"}.

    Example
    -------
    >>> import pathlib
    >>> from speechbrain_sercl.predictions import write_predictions
    >>> root = pathlib.Path(getfixture("tmp_path")) / "exp" / "paper"
    >>> rows = [
    ...     {
    ...         "id": "u1",
    ...         "corpus": "casia",
    ...         "speaker": "s1",
    ...         "emotion": "a",
    ...         "predicted": "a",
    ...         "probabilities": [0.9, 0.1],
    ...     },
    ...     {
    ...         "id": "u2",
    ...         "corpus": "casia",
    ...         "speaker": "s1",
    ...         "emotion": "b",
    ...         "predicted": "b",
    ...         "probabilities": [0.2, 0.8],
    ...     },
    ... ]
    >>> for fold in (0, 1):
    ...     step = root / f"fold_{fold}" / "casia" / "finetune"
    ...     step.mkdir(parents=True)
    ...     _ = write_predictions(step / "predictions.csv", ["a", "b"], rows)
    ...     rows[0]["predicted"] = "b"  # the second fold misses u1
    >>> results = collect_results(root)
    >>> results["casia"]["finetune"]["folds"][1]["UA"]
    0.5
    >>> results["casia"]["finetune"]["mean"]["UA"]
    0.75
    >>> results["casia"]["finetune"]["confusion"]
    [[1, 1], [0, 2]]
    """
    experiment, protocol = os.path.split(os.path.normpath(protocol_folder))
    found, made = {}, {}
    for name in sorted(os.listdir(protocol_folder)):
        fold = layout.run_of_folder(name)
        if fold is None:  # the final run, results, plots: not a fold
            continue
        run = layout.run_folder(experiment, protocol, fold)
        for corpus in sorted(os.listdir(run)):
            if corpus == layout.STAGE1:
                continue
            for method in method_names(tested=True):
                step = layout.step_folder(
                    experiment, protocol, fold, method, corpus
                )
                if steps is not None and step not in steps:
                    continue
                metrics = _step_metrics(step)
                if metrics is not None:
                    by_method = found.setdefault(corpus, {})
                    by_method.setdefault(method, {})[fold] = metrics
                    made.setdefault((corpus, method), set()).add(
                        None if steps is None else steps[step]
                    )
    results = {
        corpus: {method: _summarise(folds) for method, folds in methods.items()}
        for corpus, methods in found.items()
    }
    if steps is not None:
        for (corpus, method), trained_as in made.items():
            # One value when every step matches the current fingerprints.
            only = trained_as.pop() if len(trained_as) == 1 else None
            results[corpus][method]["trained_as"] = only
    return results


def _step_metrics(step):
    """The metrics of one step from its predictions, None if it has none."""
    predictions = layout.step_file(step, layout.PREDICTIONS_FILE)
    if os.path.exists(predictions):
        return prediction_metrics(predictions)
    if os.path.exists(layout.step_file(step, layout.TEST_REPORT_FILE)):
        raise FileNotFoundError(
            f"{step}: has {layout.TEST_REPORT_FILE} but no "
            f"{layout.PREDICTIONS_FILE}; evaluate the step again to write "
            "its predictions"
        )
    return None


def _summarise(folds):
    """Per fold scores, their mean / std and the summed confusion."""
    classes = {tuple(metrics["classes"]) for metrics in folds.values()}
    if len(classes) != 1:
        raise ValueError(
            f"the folds do not share one class order: {sorted(classes)}"
        )
    summary = {"folds": {}, "mean": {}, "std": {}}
    for fold, metrics in sorted(folds.items()):
        summary["folds"][fold] = {name: metrics[name] for name in METRIC_NAMES}
    for name in METRIC_NAMES:
        values = [metrics[name] for metrics in summary["folds"].values()]
        summary["mean"][name], summary["std"][name] = mean_std(values)
    confusions = [
        np.asarray(metrics["confusion"]) for metrics in folds.values()
    ]
    summary["confusion"] = np.sum(confusions, axis=0).astype(int).tolist()
    summary["classes"] = list(classes.pop())
    return summary


def write_results(results, folder, left_out=None):
    """Write ``results.json`` and ``results.md``.

    Arguments
    ---------
    results : dict
        From :func:`collect_results`.
    folder : str
        Where to write.
    left_out : dict, optional
        step folder -> why its results are not in ``results`` (listed at
        the end of ``results.md``, relative to ``folder``).

    Returns
    -------
    list of str
        The files written.
    """
    os.makedirs(folder, exist_ok=True)
    left_out = {
        os.path.relpath(step, folder): reason
        for step, reason in (left_out or {}).items()
    }
    return write_json_and_markdown(
        results,
        results_markdown(results, left_out),
        os.path.join(folder, layout.RESULTS_JSON),
        os.path.join(folder, layout.RESULTS_MARKDOWN),
    )


def write_json_and_markdown(results, markdown, json_path, markdown_path):
    """Write results as JSON and their tables as Markdown.

    Arguments
    ---------
    results : dict
        What to write as JSON.
    markdown : str
        The Markdown text of the same results.
    json_path, markdown_path : str
        Where to write them.

    Returns
    -------
    list of str
        ``[json_path, markdown_path]``.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> paths = write_json_and_markdown(
    ...     {"UA": 0.5}, "# UA 50 %", folder / "r.json", folder / "r.md"
    ... )
    >>> json.loads(open(paths[0]).read()), open(paths[1]).read()
    ({'UA': 0.5}, '# UA 50 %')
    """
    with open(json_path, "w", encoding="utf-8") as out:
        json.dump(results, out, indent=2)
    with open(markdown_path, "w", encoding="utf-8") as out:
        out.write(markdown)
    return [json_path, markdown_path]


def results_markdown(results, left_out=None):
    """Summary and per-fold tables (percentages) as Markdown.

    Arguments
    ---------
    results : dict
        From :func:`collect_results`.
    left_out : dict, optional
        step folder -> why its results are left out (listed last).

    Returns
    -------
    str
        The Markdown text.

    Example
    -------
    >>> summary = {
    ...     "folds": {0: {"UA": 0.5, "WA": 0.6, "macro_F1": 0.4}},
    ...     "mean": {"UA": 0.5, "WA": 0.6, "macro_F1": 0.4},
    ...     "std": {"UA": 0.0, "WA": 0.0, "macro_F1": 0.0},
    ... }
    >>> print(results_markdown({"casia": {"finetune": summary}}))
    ... # doctest: +NORMALIZE_WHITESPACE
    # Results
    <BLANKLINE>
    | corpus | method | UA (%) | WA (%) | macro-F1 (%) | folds |
    |---|---|---|---|---|---|
    | casia | FT baseline | 50.00 ± 0.00 | 60.00 ± 0.00 | 40.00 ± 0.00 | 1 |
    <BLANKLINE>
    ## Per fold (UA %)
    <BLANKLINE>
    | corpus | method | fold 0 |
    |---|---|---|
    | casia | FT baseline | 50.00 |
    <BLANKLINE>
    Mean ± population standard deviation over folds.
    <BLANKLINE>
    """
    lines = [
        "# Results",
        "",
        "| corpus | method | UA (%) | WA (%) | macro-F1 (%) | folds |",
        "|---|---|---|---|---|---|",
    ]
    for corpus, method, summary in _rows(results):
        cells = [
            f"{100 * summary['mean'][name]:.2f} ± "
            f"{100 * summary['std'][name]:.2f}"
            for name in METRIC_NAMES
        ]
        lines.append(
            f"| {corpus} | {METHODS[method].display_name} | "
            f"{' | '.join(cells)} "
            f"| {len(summary['folds'])} |"
        )
    folds = sorted({int(f) for _, _, s in _rows(results) for f in s["folds"]})
    lines += ["", "## Per fold (UA %)", ""]
    lines.append(
        "| corpus | method | " + " | ".join(f"fold {f}" for f in folds) + " |"
    )
    lines.append("|---|---|" + "---|" * len(folds))
    for corpus, method, summary in _rows(results):
        by_fold = {int(f): m for f, m in summary["folds"].items()}
        cells = [
            f"{100 * by_fold[f]['UA']:.2f}" if f in by_fold else "-"
            for f in folds
        ]
        lines.append(
            f"| {corpus} | {METHODS[method].display_name} | "
            f"{' | '.join(cells)} |"
        )
    lines += ["", "Mean ± population standard deviation over folds.", ""]
    if left_out:
        lines += ["Left out of these results:", ""]
        lines += [f"- `{step}`: {why}" for step, why in left_out.items()]
        lines.append("")
    return "\n".join(lines)


def _rows(results):
    for corpus, methods in sorted(results.items()):
        for method in method_names(tested=True):
            if method in methods:
                yield corpus, method, methods[method]
