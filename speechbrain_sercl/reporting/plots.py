"""The figures of a report: confusion matrices, layer-wise similarity,
embedding maps and training curves, as PNG files.

Plotting needs matplotlib, from the ``analysis`` extra
(``pip install "speechbrain-sercl[analysis]"``); it is imported only when a
figure is drawn, and :func:`pyplot` says how to install it when it is
missing.

Authors
 * speechbrain-sercl developers
"""

import math

import numpy as np

__all__ = [
    "PlottingUnavailable",
    "plot_confusion",
    "plot_embedding_maps",
    "plot_layer_similarity",
    "plot_training_curves",
    "pyplot",
]

INSTALL_HINT = 'pip install "speechbrain-sercl[analysis]"'
MARKERS = ("o", "^", "s", "D", "v", "P", "X")
PANEL_TITLES = {
    "before": "before stage 1",
    "after": "after stage 1",
}


class PlottingUnavailable(ImportError):
    """matplotlib is not installed: the figures cannot be drawn."""


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend.

    Returns
    -------
    module
        ``matplotlib.pyplot``.

    Raises
    ------
    PlottingUnavailable
        When matplotlib is missing, naming the extra that installs it.
    """
    try:
        import matplotlib
    except ImportError as error:
        raise PlottingUnavailable(
            f"the figures need matplotlib: {INSTALL_HINT}"
        ) from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path):
    """Write a figure as PNG and close it."""
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot().close(figure)
    return path


def plot_confusion(summary, path, title=""):
    """Plot a row-normalised confusion matrix (counts in the cells).

    Arguments
    ---------
    summary : dict
        One corpus/method entry of
        :func:`speechbrain_sercl.reporting.results.collect_results`.
    path : str
        The PNG to write.
    title : str
        What the matrix is of (the UA over all folds is appended).

    Returns
    -------
    str
        ``path``.
    """
    plt = pyplot()
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
    return _save(figure, path)


def plot_layer_similarity(similarity, path, title=""):
    """The paper's Fig. 4: mean cosine similarity of positive and negative
    pairs per layer, one panel before stage 1 and one after.

    Arguments
    ---------
    similarity : dict
        ``before`` / ``after`` -> per layer a dict of mean similarities
        (:func:`speechbrain_sercl.reporting.analysis.layer_similarity`).
    path : str
        The PNG to write.
    title : str
        The figure's title.

    Returns
    -------
    str
        ``path``.
    """
    plt = pyplot()
    figure, axes = plt.subplots(
        1, len(similarity), figsize=(5 * len(similarity), 4), sharey=True
    )
    for axis, (name, rows) in zip(
        np.atleast_1d(axes), similarity.items(), strict=True
    ):
        layers = range(len(rows))
        for kind, style in (
            ("positive", "-o"),
            ("negative", "-s"),
            ("positive_across", ":"),
            ("negative_across", ":"),
        ):
            values = [row[kind] for row in rows]
            if not all(math.isnan(value) for value in values):
                axis.plot(layers, values, style, label=kind.replace("_", " "))
        axis.set_title(PANEL_TITLES.get(name, name))
        axis.set_xlabel("layer (0: transformer input)")
        axis.set_xticks(list(layers))
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("mean cosine similarity")
    np.atleast_1d(axes)[-1].legend()
    figure.suptitle(title)
    return _save(figure, path)


def plot_embedding_maps(maps, emotions, corpora, path, title=""):
    """Embedding maps side by side: colour by emotion, marker by corpus.

    Arguments
    ---------
    maps : dict
        Panel name (``before`` / ``after``) -> ``[N, 2]`` coordinates.
    emotions : list of str
        The emotion of each point.
    corpora : list of str
        The corpus of each point.
    path : str
        The PNG to write.
    title : str
        The figure's title.

    Returns
    -------
    str
        ``path``.
    """
    plt = pyplot()
    emotion_names = sorted(set(emotions))
    corpus_names = sorted(set(corpora))
    colors = plt.get_cmap("tab10")
    figure, axes = plt.subplots(1, len(maps), figsize=(5.5 * len(maps), 5))
    emotions, corpora = np.asarray(emotions), np.asarray(corpora)
    for axis, (name, points) in zip(
        np.atleast_1d(axes), maps.items(), strict=True
    ):
        points = np.asarray(points)
        for e, emotion in enumerate(emotion_names):
            for c, corpus in enumerate(corpus_names):
                chosen = (emotions == emotion) & (corpora == corpus)
                if not chosen.any():
                    continue
                axis.scatter(
                    points[chosen, 0],
                    points[chosen, 1],
                    color=colors(e % 10),
                    marker=MARKERS[c % len(MARKERS)],
                    s=18,
                    label=f"{emotion} ({corpus})",
                )
        axis.set_title(PANEL_TITLES.get(name, name))
        axis.set_xticks([])
        axis.set_yticks([])
    np.atleast_1d(axes)[-1].legend(
        fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5)
    )
    figure.suptitle(title)
    return _save(figure, path)


def plot_training_curves(stage1_curves, step_curves, path, title=""):
    """Training curves of a run: stage 1's loss terms and pair similarities,
    the stage-2 / FT steps' training loss and UA.

    Arguments
    ---------
    stage1_curves : dict
        Stage 1's :func:`speechbrain_sercl.reporting.training_log.epoch_curves`
        (may be empty).
    step_curves : dict
        Step name (``"iemocap classifier"``) -> (its epoch curves, its test
        epoch, its test values).
    path : str
        The PNG to write.
    title : str
        The figure's title.

    Returns
    -------
    str
        ``path``.
    """
    plt = pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    _plot_curves(
        axes[0, 0], stage1_curves, ("loss", "contrastive", "margin"), "train"
    )
    axes[0, 0].set_title("stage 1: loss terms")
    _plot_curves(
        axes[0, 1],
        stage1_curves,
        ("positive_similarity", "negative_similarity"),
        "train",
    )
    axes[0, 1].set_title("stage 1: mean similarity in training batches")
    for name, (curves, _, _) in step_curves.items():
        _plot_curve(axes[1, 0], curves, "train loss", name)
    axes[1, 0].set_title("stage 2 / FT: training loss")
    for name, (curves, test_epoch, tested) in step_curves.items():
        line = _plot_curve(axes[1, 1], curves, "valid UA", f"{name} (valid)")
        if test_epoch is not None and "test UA" in tested:
            color = line.get_color() if line else None
            axes[1, 1].plot(
                [test_epoch],
                [tested["test UA"]],
                "*",
                markersize=12,
                color=color,
                label=f"{name} (test)",
            )
    axes[1, 1].set_title("stage 2 / FT: UA (valid per epoch, test: *)")
    for axis in axes.flat:
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize="small")
        else:
            axis.text(0.5, 0.5, "not logged", ha="center", va="center")
    figure.suptitle(title)
    return _save(figure, path)


def _plot_curves(axis, curves, names, dataset):
    for name in names:
        _plot_curve(axis, curves, f"{dataset} {name}", name.replace("_", " "))


def _plot_curve(axis, curves, key, label):
    """Plot one curve if it was logged; the line, or None."""
    if key not in curves:
        return None
    epochs, values = curves[key]
    (line,) = axis.plot(epochs, values, "-o", markersize=3, label=label)
    return line
