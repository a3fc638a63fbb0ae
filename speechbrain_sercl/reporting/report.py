"""The report of an experiment's protocol: ``report.md`` and its figures.

:func:`write_report` gathers what the runs of one protocol wrote into
``<experiment>/<protocol>/``:

- ``results.json`` and ``results.md``
  (:func:`speechbrain_sercl.reporting.results.write_results`), written first, so
  they exist even where the figures cannot be drawn;
- ``analysis/``: one confusion matrix per corpus and method (all folds
  summed), and for the analysed run the layer-wise similarity of positive
  and negative pairs before and after stage 1 (PNG and CSV), the embedding
  maps and the training curves (:mod:`speechbrain_sercl.reporting.analysis`,
  :mod:`speechbrain_sercl.reporting.plots`);
- ``report.md``: the package version, the protocol and seeds, the results
  table, the layer similarity of the last layers and a link to every
  figure (relative paths, so the folder can be moved or published).

``sercl analyze`` calls it on a finished experiment, and ``sercl folds`` /
``sercl demo`` at the end of the protocol.

Authors
 * speechbrain-sercl developers
"""

import csv
import os
import time

from speechbrain_sercl import __version__, layout
from speechbrain_sercl.config import read_config
from speechbrain_sercl.method.registry import METHODS, method_names
from speechbrain_sercl.reporting.analysis import MODELS, PAIR_KINDS, analyse_run
from speechbrain_sercl.reporting.plots import (
    plot_confusion,
    plot_embedding_maps,
    plot_layer_similarity,
    plot_training_curves,
)
from speechbrain_sercl.reporting.results import (
    collect_results,
    results_markdown,
    write_results,
)
from speechbrain_sercl.reporting.training_log import (
    epoch_curves,
    last_test_values,
    read_train_log,
)

__all__ = [
    "LAST_LAYERS",
    "layer_similarity_markdown",
    "write_layer_similarity_table",
    "write_report",
]

LAST_LAYERS = 3  # how many of the last layers the report quotes
SETTING_KEYS = ("seed", "fold_seed", "n_folds", "data_seed", "ssl_source")


def write_report(
    protocol_folder,
    run=0,
    max_per_corpus=200,
    batch_size=8,
    device="cpu",
    check=None,
):
    """Write the results, the figures and ``report.md`` of a protocol.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``, holding ``fold_<i>`` folders.
    run : int
        The run whose stage 1, held-out utterances and training logs are
        analysed.
    max_per_corpus : int
        At most this many held-out utterances per corpus are analysed.
    batch_size : int
        Utterances per forward pass of the speech models.
    device : str
        Where the speech models run.
    check : speechbrain_sercl.step_records.StepCheck, optional
        The steps whose results are reported, and those left out (listed
        in ``results.md``); by default every step, unchecked.

    Returns
    -------
    str
        The path of ``report.md``.

    Raises
    ------
    speechbrain_sercl.reporting.plots.PlottingUnavailable
        Without matplotlib (after ``results.json`` and ``results.md``).
    """
    started = time.perf_counter()
    protocol_folder = os.path.normpath(os.fspath(protocol_folder))
    run_path = layout.run_folder(*os.path.split(protocol_folder), run)
    if not os.path.isdir(run_path):
        raise FileNotFoundError(
            f"{protocol_folder}: run {run} ({run_path}) is missing"
        )
    if check is None:
        results = collect_results(protocol_folder)
        write_results(results, protocol_folder)
    else:
        results = collect_results(protocol_folder, check.accepted)
        write_results(results, protocol_folder, check.excluded)
    os.makedirs(layout.analysis_file(protocol_folder, ""), exist_ok=True)
    figures = {
        f"{corpus}, {METHODS[method].display_name}": plot_confusion(
            summary,
            layout.confusion_figure(protocol_folder, corpus, method),
            title=f"{corpus}, {METHODS[method].display_name}",
        )
        for corpus, methods in results.items()
        for method, summary in methods.items()
    }
    analysis = _analyse_stage1(
        protocol_folder, run, max_per_corpus, batch_size, device
    )
    if analysis is not None:
        figures.update(_draw_analysis(protocol_folder, run, analysis))
    figures["training curves"] = _draw_training_curves(protocol_folder, run)
    seconds = time.perf_counter() - started
    print(f"[sercl] report and analysis of run {run}: {seconds:.1f} s")
    text = report_markdown(
        protocol_folder, run, results, analysis, figures, seconds
    )
    path = layout.report_file(protocol_folder)
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def _analyse_stage1(protocol_folder, run, max_per_corpus, batch_size, device):
    """The run's analysis, or None when it has no finished stage 1 (FT
    only, or a stage 1 that wrote no model)."""
    experiment, protocol = os.path.split(protocol_folder)
    encoder = layout.encoder_folder(experiment, protocol, run)
    stage1 = layout.step_folder(experiment, protocol, run, layout.STAGE1)
    needed = (
        layout.encoder_files(encoder)["ssl"],
        layout.step_file(stage1, layout.HPARAMS_FILE),
    )
    if not all(os.path.isfile(path) for path in needed):
        return None
    return analyse_run(protocol_folder, run, max_per_corpus, batch_size, device)


def _draw_analysis(protocol_folder, run, analysis):
    """The layer-similarity table and figure, and the embedding maps."""
    count = len(analysis.utterances)
    write_layer_similarity_table(
        analysis.similarity,
        layout.run_analysis_file(
            protocol_folder, run, layout.LAYER_SIMILARITY_TABLE
        ),
    )
    layers = plot_layer_similarity(
        analysis.similarity,
        layout.run_analysis_file(
            protocol_folder, run, layout.LAYER_SIMILARITY_FIGURE
        ),
        title=f"Run {run}: cosine similarity of mean-pooled features, "
        f"{count} held-out utterances",
    )
    maps = plot_embedding_maps(
        analysis.maps,
        [utt["emotion"] for utt in analysis.utterances],
        [utt["corpus"] for utt in analysis.utterances],
        layout.run_analysis_file(
            protocol_folder, run, layout.EMBEDDING_MAP_FIGURE
        ),
        title=f"Run {run}: t-SNE of the last layer's mean-pooled features",
    )
    return {"layer-wise similarity": layers, "embedding map": maps}


def _draw_training_curves(protocol_folder, run):
    """The training-curve figure of every step of the run that logged."""
    experiment, protocol = os.path.split(protocol_folder)
    stage1_log = layout.train_log(
        layout.step_folder(experiment, protocol, run, layout.STAGE1)
    )
    stage1 = _read_curves(stage1_log)[0]
    steps = {}
    run_path = layout.run_folder(experiment, protocol, run)
    for corpus in _corpora_of_run(run_path):
        for method in method_names(per_corpus=True, runs_recipe=True):
            step = layout.step_folder(experiment, protocol, run, method, corpus)
            if os.path.exists(layout.train_log(step)):
                steps[f"{corpus} {method}"] = _read_curves(
                    layout.train_log(step)
                )
    return plot_training_curves(
        stage1,
        steps,
        layout.run_analysis_file(
            protocol_folder, run, layout.TRAINING_CURVES_FIGURE
        ),
        title=f"Run {run}: training logs",
    )


def _corpora_of_run(run_path):
    """The corpus folders of a run folder."""
    return [
        name for name in sorted(os.listdir(run_path)) if name != layout.STAGE1
    ]


def _read_curves(path):
    """(epoch curves, test epoch, test values) of a log; empty if none."""
    if not os.path.exists(path):
        return {}, None, {}
    lines = read_train_log(path)
    return (epoch_curves(lines), *last_test_values(lines))


def write_layer_similarity_table(similarity, path):
    """The layer-wise similarity as CSV: one row per model and layer.

    Arguments
    ---------
    similarity : dict
        ``before`` / ``after`` -> per layer the mean similarity of each
        kind of pair
        (:func:`speechbrain_sercl.reporting.analysis.layer_similarity`).
    path : str
        The CSV to write.

    Returns
    -------
    str
        ``path``.

    Example
    -------
    >>> row = dict.fromkeys(PAIR_KINDS, 0.5) | {"negative": 0.25}
    >>> path = getfixture("tmp_path") / "layers.csv"
    >>> _ = write_layer_similarity_table({"after": [row]}, path)
    >>> print(path.read_text().splitlines()[1])
    after,0,0.5,0.25,0.25,0.5,0.5,0.5,0.5
    """
    header = ["model", "layer", "positive", "negative", "gap"]
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header + list(PAIR_KINDS[2:]))
        for model, rows in similarity.items():
            for layer, row in enumerate(rows):
                gap = row["positive"] - row["negative"]
                writer.writerow(
                    [model, layer, row["positive"], row["negative"], gap]
                    + [row[kind] for kind in PAIR_KINDS[2:]]
                )
    return path


def layer_similarity_markdown(similarity, last_layers=LAST_LAYERS):
    """The similarity of the last layers, before and after stage 1.

    Arguments
    ---------
    similarity : dict
        ``before`` / ``after`` -> per layer the mean similarity of each
        kind of pair.
    last_layers : int
        How many of the last layers to show.

    Returns
    -------
    str
        A Markdown table: per layer, positive, negative and their gap
        before and after stage 1.

    Example
    -------
    >>> rows = [{"positive": 0.9, "negative": 0.8}] * 2
    >>> after = [{"positive": 0.9, "negative": 0.5}] * 2
    >>> text = layer_similarity_markdown({"before": rows, "after": after}, 1)
    >>> print(text.splitlines()[-1])
    | 1 | 0.900 | 0.800 | 0.100 | 0.900 | 0.500 | 0.400 |
    """
    header = "| layer |"
    for model in MODELS:
        header += f" positive ({model}) | negative ({model}) | gap ({model}) |"
    lines = [header, "|---" * (1 + 3 * len(MODELS)) + "|"]
    count = len(similarity[MODELS[0]])
    for layer in range(max(count - last_layers, 0), count):
        cells = []
        for model in MODELS:
            row = similarity[model][layer]
            gap = row["positive"] - row["negative"]
            cells += [row["positive"], row["negative"], gap]
        lines.append(
            f"| {layer} | " + " | ".join(f"{v:.3f}" for v in cells) + " |"
        )
    return "\n".join(lines)


def report_markdown(protocol_folder, run, results, analysis, figures, seconds):
    """The text of ``report.md``.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.
    run : int
        The analysed run.
    results : dict
        From :func:`speechbrain_sercl.reporting.results.collect_results`.
    analysis : speechbrain_sercl.reporting.analysis.RunAnalysis or None
        The run's analysis (None without a stage 1).
    figures : dict
        Caption -> PNG path.
    seconds : float
        How long the analysis took.

    Returns
    -------
    str
    """
    protocol = os.path.basename(protocol_folder)
    lines = [
        f"# Report: {protocol} protocol",
        "",
        f"speechbrain-sercl {__version__}; experiment "
        f"`{os.path.dirname(protocol_folder)}`.",
        "",
        "## Settings",
        "",
        *_settings_lines(protocol_folder, run),
        "",
        results_markdown(results)
        .replace("# ", "## ", 1)
        .replace("\n## Per fold", "\n### Per fold"),
        *_cross_corpus_lines(protocol_folder),
        "## What stage 1 did to the representation",
        "",
        *_analysis_lines(run, analysis, seconds),
        "## Figures",
        "",
    ]
    for caption, path in figures.items():
        relative = os.path.relpath(path, protocol_folder)
        lines += [f"### {caption}", "", f"![{caption}]({relative})", ""]
    return "\n".join(lines)


def _cross_corpus_lines(protocol_folder):
    """The cross-corpus tables (``cross_corpus.md``), when they exist."""
    experiment, protocol = os.path.split(os.path.normpath(protocol_folder))
    path = os.path.join(
        layout.cross_corpus_folder(experiment, protocol),
        layout.CROSS_CORPUS_MARKDOWN,
    )
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as markdown:
        text = markdown.read()
    return [text.replace("\n## ", "\n### ").replace("# ", "## ", 1), ""]


def _settings_lines(protocol_folder, run):
    """Protocol and seeds, from the first step of the run that saved its
    hyperparameters."""
    experiment, protocol = os.path.split(protocol_folder)
    lines = [f"- protocol: `{protocol}`"]
    for path in _hparams_files(experiment, protocol, run):
        config = read_config(path, {})
        lines += [
            f"- {key}: `{config[key]}`" for key in SETTING_KEYS if key in config
        ]
        lines.append(
            f"- from `{os.path.relpath(path, protocol_folder)}`; the t-SNE "
            "maps are seeded with `seed`"
        )
        break
    return lines


def _hparams_files(experiment, protocol, run):
    """The ``hyperparams.yaml`` of the run's steps that have one."""
    run_path = layout.run_folder(experiment, protocol, run)
    steps = [layout.step_folder(experiment, protocol, run, layout.STAGE1)]
    if os.path.isdir(run_path):
        steps += [
            layout.step_folder(experiment, protocol, run, method, corpus)
            for corpus in _corpora_of_run(run_path)
            for method in method_names(per_corpus=True, runs_recipe=True)
        ]
    paths = [layout.step_file(step, layout.HPARAMS_FILE) for step in steps]
    return [path for path in paths if os.path.isfile(path)]


def _analysis_lines(run, analysis, seconds):
    """The layer similarity of the last layers, in words and numbers."""
    if analysis is None:
        return [f"Run {run} has no stage 1 (no `classifier` method).", ""]
    last = {model: analysis.similarity[model][-1] for model in MODELS}
    gaps = {m: row["positive"] - row["negative"] for m, row in last.items()}
    corpora = sorted({utt["corpus"] for utt in analysis.utterances})
    return [
        f"Mean cosine similarity of each layer's features (mean over valid "
        f"frames) of {len(analysis.utterances)} held-out utterances of run "
        f"{run} ({', '.join(corpora)}): {analysis.pairs['positive']} "
        f"positive pairs (same emotion; {analysis.pairs['positive_across']} "
        f"across corpora), {analysis.pairs['negative']} negative pairs. "
        f"In the last layer the gap between positive and negative pairs is "
        f"{gaps['before']:.3f} before stage 1 and {gaps['after']:.3f} after "
        f"(report and analysis: {seconds:.1f} s).",
        "",
        layer_similarity_markdown(analysis.similarity),
        "",
    ]
