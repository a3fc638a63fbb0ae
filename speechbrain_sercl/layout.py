"""The experiment layout: the one place that names folders and files.

An experiment (one speech model, one seed) writes::

    <experiment_folder>/
        <protocol>/                      results.json, results.md, report.md,
                                         step_fingerprints.json
            analysis/                    figures and tables of the report
            fold_<i>/
                contrastive/             stage 1 of run i
                    encoder/             ssl.ckpt, pooling.ckpt
                <corpus>/<method>/       stage 2 ("classifier") or FT
                    test_metrics.json, predictions.csv
                    save/                checkpoints, label_encoder.txt,
                        feature_cache/   stage 2's cached features
            final/                       the final run: as fold_<i>, on
                                         every utterance; its per-corpus
                                         steps write trained.json, no test
            cross_corpus/                cross_corpus.json, .md (the
                                         source -> target table)
                fold_<i>/<source>/<target>/<method>/
                    predictions.csv, fold_split.json: the source's step
                    of run i on the target's test part (no training)
            replaced/                    a step being trained again, until
                                         it finishes: its old folder, at
                                         the same place (fold_<i>/...)

The final run (``run`` = :data:`FINAL_RUN`) trains stage 1 on every
utterance of every corpus and stage 2 / FT on every utterance of each
corpus, for publishing; it has no test part, so its steps end with
``trained.json`` instead of a test report (:func:`finished_file`).

Every step folder also holds SpeechBrain's ``hyperparams.yaml`` and
``log.txt``, the ``train_log.txt`` of its epochs, ``fold_split.json`` (the
exact utterances of the run) and, when the fold runner ran it,
``step_log.txt`` (its console output) and ``step_record.json`` (what the
step was made from and what it wrote, see
:mod:`speechbrain_sercl.step_records`); the protocol folder's
``step_fingerprints.json`` holds what each step would be made from now.

Corpora are prepared once, outside any experiment, into
``<prepared_folder>/<corpus>-<key>/`` (manifest and folds), where the key
is a hash of the corpus release folder, its reader and the reader's
options: every seed and speech model reuses them.

The YAMLs derive their folders from these functions (``!apply:``), and so
do the fold runner and the report.

Example
-------
>>> step_folder("exp", "paper", 2, "classifier", "casia")
'exp/paper/fold_2/casia/classifier'
>>> step_folder("exp", "paper", 2, STAGE1)
'exp/paper/fold_2/contrastive'
>>> step_folder("exp", "paper", FINAL_RUN, "classifier", "casia")
'exp/paper/final/casia/classifier'
"""

import hashlib
import json
import os

__all__ = [
    "CLASSICAL",
    "COMMAND_PREFIX",
    "CROSS_CORPUS",
    "CROSS_CORPUS_JSON",
    "CROSS_CORPUS_MARKDOWN",
    "EMBEDDING_MAP_FIGURE",
    "ENCODER_FILE",
    "FINAL_RUN",
    "FOLD_SPLIT_FILE",
    "HPARAMS_FILE",
    "LABEL_ENCODER_FILE",
    "LAYER_SIMILARITY_FIGURE",
    "LAYER_SIMILARITY_TABLE",
    "LOCK_FILE",
    "LOCK_HOLDER_FILE",
    "POOLING_FILE",
    "PREDICTIONS_FILE",
    "REPORT_FILE",
    "RESULTS_JSON",
    "RESULTS_MARKDOWN",
    "STAGE1",
    "STEP_FINGERPRINTS_FILE",
    "STEP_LOG_FILE",
    "STEP_RECORD_FILE",
    "TEST_REPORT_FILE",
    "TRAINED_FILE",
    "TRAINING_CURVES_FIGURE",
    "TRAIN_LOG_FILE",
    "analysis_file",
    "check_run",
    "confusion_figure",
    "corpus_folder",
    "cross_corpus_folder",
    "encoder_files",
    "encoder_folder",
    "feature_cache_folder",
    "finished_file",
    "run_of_folder",
    "is_final",
    "lock_file",
    "protocol_folder",
    "replaced_folder",
    "report_file",
    "run_analysis_file",
    "run_folder",
    "save_folder",
    "stage1_copy_folder",
    "step_file",
    "step_folder",
    "step_log",
    "subfolders",
    "train_log",
]

STAGE1 = "contrastive"
CLASSICAL = "classical"  # the classical floor's step folders
ENCODER_FILE = "ssl.ckpt"  # written last: a finished stage 1
POOLING_FILE = "pooling.ckpt"
TEST_REPORT_FILE = "test_metrics.json"  # written last: a finished step
TRAINED_FILE = "trained.json"  # written last: a finished final-run step
FINAL_RUN = "final"  # the run value of the run on all the data
PREDICTIONS_FILE = "predictions.csv"
FOLD_SPLIT_FILE = "fold_split.json"
HPARAMS_FILE = "hyperparams.yaml"  # SpeechBrain's copy of a step's YAML
LABEL_ENCODER_FILE = "label_encoder.txt"
TRAIN_LOG_FILE = "train_log.txt"
STEP_LOG_FILE = "step_log.txt"
# The lock of a folder that one run writes at a time (locking.py), and the
# process id of its holder, written only to be named to a second run.
LOCK_FILE = ".sercl.lock"
LOCK_HOLDER_FILE = ".sercl.lock.pid"
STEP_RECORD_FILE = "step_record.json"  # what a step was made from, wrote
STEP_FINGERPRINTS_FILE = "step_fingerprints.json"  # of the protocol's steps
COMMAND_PREFIX = "[sercl] "  # starts the line of a step log with its command
RESULTS_JSON = "results.json"
RESULTS_MARKDOWN = "results.md"
CROSS_CORPUS = "cross_corpus"
CROSS_CORPUS_JSON = "cross_corpus.json"
CROSS_CORPUS_MARKDOWN = "cross_corpus.md"
REPORT_FILE = "report.md"
# Files of the analysis of one run (see run_analysis_file).
LAYER_SIMILARITY_FIGURE = "layer_similarity.png"
LAYER_SIMILARITY_TABLE = "layer_similarity.csv"
EMBEDDING_MAP_FIGURE = "embedding_map.png"
TRAINING_CURVES_FIGURE = "training_curves.png"
_ANALYSIS_FOLDER = "analysis"
_ENCODER_FOLDER = "encoder"
_SAVE_FOLDER = "save"
_STAGE1_COPY_FOLDER = "stage1"
_FEATURE_CACHE_FOLDER = "feature_cache"
_REPLACED_FOLDER = "replaced"
_FOLD_PREFIX = "fold_"


def protocol_folder(experiment_folder, protocol):
    """The folder of one protocol's runs and results.

    Arguments
    ---------
    experiment_folder : str
        The experiment's root.
    protocol : str
        The fold protocol (``paper``, ``speaker``, ...).

    Returns
    -------
    str
        ``<experiment_folder>/<protocol>``.

    Example
    -------
    >>> protocol_folder("exp", "speaker")
    'exp/speaker'
    """
    return os.path.join(str(experiment_folder), str(protocol))


def is_final(run):
    """Whether a run value names the final run (all the data, no test).

    Arguments
    ---------
    run : int or str
        A run index, or :data:`FINAL_RUN`.

    Returns
    -------
    bool

    Example
    -------
    >>> is_final("final"), is_final(0)
    (True, False)
    """
    return isinstance(run, str) and run == FINAL_RUN


def check_run(run):
    """A run value as given, if it is a run index or :data:`FINAL_RUN`.

    Arguments
    ---------
    run : int or str
        The ``run`` of a YAML or command line.

    Returns
    -------
    int or str
        ``run``.

    Raises
    ------
    ValueError
        For anything else (a negative index, another string, a float...).

    Example
    -------
    >>> check_run(2), check_run("final")
    (2, 'final')
    >>> check_run("last")
    Traceback (most recent call last):
    ...
    ValueError: run must be a run index (0, 1, ...) or 'final', got 'last'
    """
    if is_final(run):
        return run
    if isinstance(run, bool) or not isinstance(run, int) or run < 0:
        raise ValueError(
            f"run must be a run index (0, 1, ...) or {FINAL_RUN!r}, got {run!r}"
        )
    return run


def run_folder(experiment_folder, protocol, run):
    """The folder of run ``run``, or of the final run.

    Arguments
    ---------
    experiment_folder : str
        The experiment's root.
    protocol : str
        The fold protocol.
    run : int or str
        The run index, or :data:`FINAL_RUN`.

    Returns
    -------
    str
        ``<experiment_folder>/<protocol>/fold_<run>``, or
        ``<experiment_folder>/<protocol>/final``.

    Example
    -------
    >>> run_folder("exp", "paper", 0)
    'exp/paper/fold_0'
    >>> run_folder("exp", "paper", FINAL_RUN)
    'exp/paper/final'
    """
    run = check_run(run)
    name = FINAL_RUN if is_final(run) else f"{_FOLD_PREFIX}{run}"
    return os.path.join(protocol_folder(experiment_folder, protocol), name)


def run_of_folder(name):
    """The run index of a ``fold_<i>`` folder name; None for any other
    (the final run's folder included).

    Arguments
    ---------
    name : str
        A folder name inside a protocol folder.

    Returns
    -------
    int or None
        ``i``, or None.

    Example
    -------
    >>> run_of_folder("fold_3"), run_of_folder("final")
    (3, None)
    >>> run_of_folder("fold_x"), run_of_folder("results.json")
    (None, None)
    """
    index = name[len(_FOLD_PREFIX) :]
    if name.startswith(_FOLD_PREFIX) and index.isascii() and index.isdigit():
        return int(index)
    return None


def step_folder(experiment_folder, protocol, run, method, corpus=None):
    """The output folder of one step of run ``run``.

    Arguments
    ---------
    experiment_folder : str
        The experiment's root.
    protocol : str
        The fold protocol.
    run : int or str
        The run index, or :data:`FINAL_RUN`.
    method : str
        ``contrastive`` (stage 1, all corpora), ``classifier`` (stage 2)
        or ``finetune`` (the FT baseline).
    corpus : str, optional
        The corpus of a per-corpus step (not for stage 1).

    Returns
    -------
    str
        ``<run>/contrastive`` or ``<run>/<corpus>/<method>``.

    Example
    -------
    >>> step_folder("exp", "paper", 1, "finetune", "iemocap")
    'exp/paper/fold_1/iemocap/finetune'
    """
    folder = run_folder(experiment_folder, protocol, run)
    if method == STAGE1:
        return os.path.join(folder, STAGE1)
    if not corpus:
        raise ValueError(f"the {method!r} step is per corpus: name one")
    return os.path.join(folder, str(corpus), str(method))


def cross_corpus_folder(
    experiment_folder,
    protocol,
    run=None,
    method=None,
    source=None,
    target=None,
):
    """Where the cross-corpus tests of a protocol go.

    Arguments
    ---------
    experiment_folder : str
        The experiment's root.
    protocol : str
        The fold protocol.
    run : int, optional
        A run index; without it, the protocol's cross-corpus folder.
    method : str, optional
        ``classifier`` or ``finetune`` (with ``run``, ``source`` and
        ``target``).
    source : str, optional
        The corpus whose trained step is tested.
    target : str, optional
        The corpus it is tested on.

    Returns
    -------
    str
        ``<protocol>/cross_corpus``, or
        ``<protocol>/cross_corpus/fold_<i>/<source>/<target>/<method>``.

    Example
    -------
    >>> cross_corpus_folder("exp", "paper")
    'exp/paper/cross_corpus'
    >>> cross_corpus_folder("exp", "paper", 1, "classifier", "iemocap", "casia")
    'exp/paper/cross_corpus/fold_1/iemocap/casia/classifier'
    """
    folder = os.path.join(
        protocol_folder(experiment_folder, protocol), CROSS_CORPUS
    )
    if run is None:
        return folder
    if is_final(check_run(run)) or not (method and source and target):
        raise ValueError(
            "a cross-corpus test is of a run index, a method, a source and a "
            f"target corpus, got {run!r}, {method!r}, {source!r}, {target!r}"
        )
    return os.path.join(
        folder, f"{_FOLD_PREFIX}{run}", str(source), str(target), str(method)
    )


def encoder_folder(experiment_folder, protocol, run):
    """Where stage 1 of run ``run`` writes its speech model and pooling.

    Arguments
    ---------
    experiment_folder : str
        The experiment's root.
    protocol : str
        The fold protocol.
    run : int or str
        The run index, or :data:`FINAL_RUN`.

    Returns
    -------
    str
        ``<run>/contrastive/encoder``.

    Example
    -------
    >>> encoder_folder("exp", "paper", 3)
    'exp/paper/fold_3/contrastive/encoder'
    """
    stage1 = step_folder(experiment_folder, protocol, run, STAGE1)
    return os.path.join(stage1, _ENCODER_FOLDER)


def replaced_folder(protocol_folder, folder):
    """Where a step folder is kept while the step is trained again.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.
    folder : str
        A step folder inside it.

    Returns
    -------
    str
        ``<protocol_folder>/replaced/<folder relative to protocol_folder>``.

    Example
    -------
    >>> replaced_folder("exp/paper", "exp/paper/fold_0/casia/finetune")
    'exp/paper/replaced/fold_0/casia/finetune'
    """
    relative = os.path.relpath(str(folder), str(protocol_folder))
    if relative.startswith(os.pardir):
        raise ValueError(f"{folder} is not inside {protocol_folder}")
    return os.path.join(str(protocol_folder), _REPLACED_FOLDER, relative)


def save_folder(output_folder):
    """A step's checkpoint folder.

    Arguments
    ---------
    output_folder : str
        The step's folder.

    Returns
    -------
    str
        ``<output_folder>/save``.

    Example
    -------
    >>> save_folder("exp/paper/fold_0/casia/classifier")
    'exp/paper/fold_0/casia/classifier/save'
    """
    return os.path.join(str(output_folder), _SAVE_FOLDER)


def step_file(folder, name):
    """A file of a step folder.

    Arguments
    ---------
    folder : str
        A step folder (:func:`step_folder`).
    name : str
        One of this module's file names (``PREDICTIONS_FILE``, ...).

    Returns
    -------
    str
        ``<folder>/<name>``.

    Example
    -------
    >>> step_file("exp/paper/fold_0/casia/finetune", PREDICTIONS_FILE)
    'exp/paper/fold_0/casia/finetune/predictions.csv'
    """
    return os.path.join(str(folder), name)


def finished_file(output_folder, run):
    """The file a per-corpus step writes last: the sign it is finished.

    A step of run ``i`` ends with its test report; a step of the final run
    has nothing to test and ends with ``trained.json``.

    Arguments
    ---------
    output_folder : str
        A stage-2 or FT step folder.
    run : int or str
        Its run index, or :data:`FINAL_RUN`.

    Returns
    -------
    str
        ``<output_folder>/test_metrics.json`` or
        ``<output_folder>/trained.json``.

    Example
    -------
    >>> finished_file("exp/paper/fold_0/casia/finetune", 0)
    'exp/paper/fold_0/casia/finetune/test_metrics.json'
    >>> finished_file("exp/paper/final/casia/finetune", FINAL_RUN)
    'exp/paper/final/casia/finetune/trained.json'
    """
    name = TRAINED_FILE if is_final(run) else TEST_REPORT_FILE
    return step_file(output_folder, name)


def train_log(output_folder):
    """A step's training log (SpeechBrain's ``FileTrainLogger`` file).

    Arguments
    ---------
    output_folder : str
        The step's folder.

    Returns
    -------
    str
        ``<output_folder>/train_log.txt``.

    Example
    -------
    >>> train_log("exp/paper/fold_0/contrastive")
    'exp/paper/fold_0/contrastive/train_log.txt'
    """
    return step_file(output_folder, TRAIN_LOG_FILE)


def step_log(output_folder):
    """The console output of a step run by the fold runner.

    Arguments
    ---------
    output_folder : str
        The step's folder.

    Returns
    -------
    str
        ``<output_folder>/step_log.txt``.

    Example
    -------
    >>> step_log("exp/paper/fold_0/contrastive")
    'exp/paper/fold_0/contrastive/step_log.txt'
    """
    return step_file(output_folder, STEP_LOG_FILE)


def lock_file(folder, name=LOCK_FILE):
    """The lock of a folder that one run at a time writes into.

    Arguments
    ---------
    folder : str
        An experiment folder, or a step folder run by hand.
    name : str
        :data:`LOCK_FILE`, or :data:`LOCK_HOLDER_FILE` (its holder's
        process id).

    Returns
    -------
    str
        ``<folder>/.sercl.lock`` (or ``<folder>/.sercl.lock.pid``).

    Example
    -------
    >>> lock_file("exp")
    'exp/.sercl.lock'
    >>> lock_file("exp", LOCK_HOLDER_FILE)
    'exp/.sercl.lock.pid'
    """
    return step_file(folder, name)


def encoder_files(folder):
    """The files of a stage-1 encoder folder, by module name.

    Arguments
    ---------
    folder : str
        An encoder folder (:func:`encoder_folder`).

    Returns
    -------
    dict
        ``{"ssl": <folder>/ssl.ckpt, "pooling": <folder>/pooling.ckpt}``
        (the ``paths`` of a SpeechBrain ``Pretrainer``).

    Example
    -------
    >>> encoder_files("enc")["ssl"]
    'enc/ssl.ckpt'
    """
    return {
        "ssl": os.path.join(str(folder), ENCODER_FILE),
        "pooling": os.path.join(str(folder), POOLING_FILE),
    }


def stage1_copy_folder(save_folder_path):
    """Where stage 2's ``Pretrainer`` collects the stage-1 files.

    Arguments
    ---------
    save_folder_path : str
        The step's checkpoint folder (:func:`save_folder`).

    Returns
    -------
    str
        ``<save_folder>/stage1``.

    Example
    -------
    >>> stage1_copy_folder("out/save")
    'out/save/stage1'
    """
    return os.path.join(str(save_folder_path), _STAGE1_COPY_FOLDER)


def feature_cache_folder(save_folder_path):
    """Where a stage-2 step caches its frozen speech model's features.

    Holds one folder per speech model (named by its weights' hash) of one
    file per utterance (:mod:`speechbrain_sercl.method.feature_cache`).

    Arguments
    ---------
    save_folder_path : str
        The step's checkpoint folder (:func:`save_folder`).

    Returns
    -------
    str
        ``<save_folder>/feature_cache``.

    Example
    -------
    >>> feature_cache_folder("out/save")
    'out/save/feature_cache'
    """
    return os.path.join(str(save_folder_path), _FEATURE_CACHE_FOLDER)


def corpus_folder(prepared_folder, corpus, data_folder, reader, options):
    """Where a corpus is prepared: keyed by what its manifest depends on.

    The key hashes the corpus name, the absolute release folder, the reader
    and its options, and nothing of the experiment (seed, speech model), so
    every experiment on the same data reuses one manifest and its folds.

    Arguments
    ---------
    prepared_folder : str
        The root of every prepared corpus.
    corpus : str
        The corpus name.
    data_folder : str
        The corpus release folder.
    reader : str
        The corpus reader (a registry name or ``module:attribute``).
    options : dict
        The reader's options.

    Returns
    -------
    str
        ``<prepared_folder>/<corpus>-<12 hex digits>``.

    Example
    -------
    >>> first = corpus_folder("prep", "casia", "/data/CASIA", "casia", {})
    >>> first.startswith("prep/casia-"), len(os.path.basename(first))
    (True, 18)
    >>> first == corpus_folder("prep", "casia", "/data/CASIA/", "casia", {})
    True
    >>> first == corpus_folder("prep", "casia", "/data/CASIA2", "casia", {})
    False
    """
    identity = {
        "corpus": corpus,
        "data_folder": os.path.abspath(str(data_folder)),
        "reader": reader,
        "options": dict(options or {}),
    }
    text = json.dumps(identity, sort_keys=True, default=str)
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return os.path.join(str(prepared_folder), f"{corpus}-{key}")


def report_file(protocol_folder):
    """The report of a protocol's runs: results, figures, settings.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.

    Returns
    -------
    str
        ``<protocol_folder>/report.md``.

    Example
    -------
    >>> report_file("exp/paper")
    'exp/paper/report.md'
    """
    return os.path.join(str(protocol_folder), REPORT_FILE)


def analysis_file(protocol_folder, name):
    """A figure or table of the report, in the protocol's analysis folder.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.
    name : str
        The file name.

    Returns
    -------
    str
        ``<protocol_folder>/analysis/<name>``.

    Example
    -------
    >>> analysis_file("exp/paper", "x.png")
    'exp/paper/analysis/x.png'
    """
    return os.path.join(str(protocol_folder), _ANALYSIS_FOLDER, name)


def confusion_figure(protocol_folder, corpus, method):
    """The confusion-matrix plot of one corpus and method (all folds).

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.
    corpus : str
        The corpus.
    method : str
        ``classifier``, ``finetune`` or ``classical``.

    Returns
    -------
    str
        ``<protocol_folder>/analysis/confusion_<corpus>_<method>.png``.

    Example
    -------
    >>> confusion_figure("exp/paper", "casia", "finetune")
    'exp/paper/analysis/confusion_casia_finetune.png'
    """
    return analysis_file(protocol_folder, f"confusion_{corpus}_{method}.png")


def run_analysis_file(protocol_folder, run, name):
    """A figure or table of the analysis of run ``run``.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.
    run : int
        The run index.
    name : str
        ``LAYER_SIMILARITY_FIGURE``, ``LAYER_SIMILARITY_TABLE``,
        ``EMBEDDING_MAP_FIGURE`` or ``TRAINING_CURVES_FIGURE``.

    Returns
    -------
    str
        ``<protocol_folder>/analysis/fold_<run>_<name>``.

    Example
    -------
    >>> run_analysis_file("exp/paper", 0, LAYER_SIMILARITY_TABLE)
    'exp/paper/analysis/fold_0_layer_similarity.csv'
    """
    prefix = f"{_FOLD_PREFIX}{check_run(run)}"
    return analysis_file(protocol_folder, f"{prefix}_{name}")


def subfolders(folder):
    """The names of the folders in ``folder``, sorted (none if it does not
    exist).

    Arguments
    ---------
    folder : str or os.PathLike
        A folder of an experiment.

    Returns
    -------
    list of str

    Example
    -------
    >>> root = getfixture("tmp_path")
    >>> (root / "fold_1").mkdir()
    >>> _ = (root / "results.json").write_text("{}")
    >>> subfolders(root), subfolders(root / "absent")
    (['fold_1'], [])
    """
    if not os.path.isdir(folder):
        return []
    return sorted(
        name
        for name in os.listdir(folder)
        if os.path.isdir(os.path.join(folder, name))
    )
