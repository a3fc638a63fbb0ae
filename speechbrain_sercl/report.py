"""Results of a cross-validation protocol: tables, JSON and plots.

Collects every ``test_metrics.json`` that the downstream steps wrote
(``<experiment>/<protocol>/fold_<i>/<corpus>/<method>/``) into
``results.json`` (per fold and mean / std of UA, WA and macro-F1, summed
confusion matrices), ``results.md`` (the same as tables a person reads) and
one confusion-matrix plot per corpus and method.

Authors
 * speechbrain-sercl developers
"""

import json
import os
import re

import numpy as np

from speechbrain_sercl.metrics import mean_std

__all__ = ["collect_results", "write_results", "METRIC_NAMES", "METHOD_NAMES"]

METRIC_NAMES = ("UA", "WA", "macro_F1")
METHOD_NAMES = {
    "classifier": "two-stage contrastive (stage 2)",
    "finetune": "FT baseline",
}
_FOLD_FOLDER = re.compile(r"fold_(\d+)$")


def collect_results(protocol_folder):
    """Gather the test metrics of every fold, corpus and method.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``, holding ``fold_<i>`` folders.

    Returns
    -------
    dict
        corpus -> method -> {"folds": {i: metrics}, "mean": {...},
        "std": {...}, "confusion": summed matrix, "classes": names}.

    Example
    -------
    >>> import pathlib
    >>> root = pathlib.Path(getfixture("tmp_path"))
    >>> for fold, ua in enumerate([0.5, 0.7]):
    ...     step = root / f"fold_{fold}" / "casia" / "finetune"
    ...     step.mkdir(parents=True)
    ...     metrics = {
    ...         "UA": ua,
    ...         "WA": ua,
    ...         "macro_F1": ua,
    ...         "confusion": [[1, 0], [0, 1]],
    ...         "classes": ["a", "b"],
    ...     }
    ...     _ = (step / "test_metrics.json").write_text(json.dumps(metrics))
    >>> results = collect_results(root)
    >>> round(results["casia"]["finetune"]["mean"]["UA"], 6)
    0.6
    >>> results["casia"]["finetune"]["confusion"]
    [[2, 0], [0, 2]]
    """
    found = {}
    for fold_name in sorted(os.listdir(protocol_folder)):
        match = _FOLD_FOLDER.match(fold_name)
        if not match:
            continue
        fold_path = os.path.join(protocol_folder, fold_name)
        for corpus in sorted(os.listdir(fold_path)):
            for method in METHOD_NAMES:
                path = os.path.join(
                    fold_path, corpus, method, "test_metrics.json"
                )
                if os.path.exists(path):
                    with open(path, encoding="utf-8") as metrics_file:
                        metrics = json.load(metrics_file)
                    by_method = found.setdefault(corpus, {})
                    by_fold = by_method.setdefault(method, {})
                    by_fold[int(match.group(1))] = metrics
    return {
        corpus: {method: _summarise(folds) for method, folds in methods.items()}
        for corpus, methods in found.items()
    }


def _summarise(folds):
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
    summary["classes"] = next(iter(folds.values()))["classes"]
    return summary


def write_results(results, folder):
    """Write ``results.json``, ``results.md`` and confusion plots.

    Arguments
    ---------
    results : dict
        From :func:`collect_results`.
    folder : str
        Where to write.

    Returns
    -------
    list of str
        The files written.
    """
    os.makedirs(folder, exist_ok=True)
    json_path = os.path.join(folder, "results.json")
    with open(json_path, "w", encoding="utf-8") as out:
        json.dump(results, out, indent=2)
    markdown_path = os.path.join(folder, "results.md")
    with open(markdown_path, "w", encoding="utf-8") as out:
        out.write(results_markdown(results))
    plots = [
        plot_confusion(
            summary,
            os.path.join(folder, f"{corpus}_{method}.png"),
            title=f"{corpus}, {METHOD_NAMES[method]}",
        )
        for corpus, methods in results.items()
        for method, summary in methods.items()
    ]
    return [json_path, markdown_path, *plots]


def results_markdown(results):
    """Summary and per-fold tables (percentages) as Markdown.

    Arguments
    ---------
    results : dict
        From :func:`collect_results`.

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
            f"| {corpus} | {METHOD_NAMES[method]} | {' | '.join(cells)} "
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
            f"| {corpus} | {METHOD_NAMES[method]} | {' | '.join(cells)} |"
        )
    lines += ["", "Mean ± population standard deviation over folds.", ""]
    return "\n".join(lines)


def _rows(results):
    for corpus, methods in sorted(results.items()):
        for method in METHOD_NAMES:
            if method in methods:
                yield corpus, method, methods[method]


def plot_confusion(summary, path, title=""):
    """Plot a row-normalised confusion matrix (counts in the cells).

    Arguments
    ---------
    summary : dict
        One corpus/method entry of :func:`collect_results`.
    path : str
        The PNG to write.
    title : str
        What the matrix is of (the UA over all folds is appended).

    Returns
    -------
    str
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(summary["confusion"])
    recall = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    classes = summary["classes"]
    figure, axis = plt.subplots(
        figsize=(1.2 * len(classes) + 2, 1.1 * len(classes) + 1.5)
    )
    image = axis.imshow(recall, vmin=0, vmax=1, cmap="Blues")
    for row, col in np.ndindex(counts.shape):
        color = "white" if recall[row, col] > 0.5 else "black"
        axis.text(
            col,
            row,
            f"{counts[row, col]}",
            ha="center",
            va="center",
            color=color,
        )
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axis.set_yticks(range(len(classes)), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    folds = len(summary["folds"])
    axis.set_title(
        f"{title}\nUA {100 * summary['mean']['UA']:.1f}% ({folds} folds)"
    )
    figure.colorbar(image, ax=axis, label="recall")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
