"""Self-contained inference folders that SpeechBrain's ``EncoderClassifier``
loads.

:func:`export_step` turns a trained stage-2 or FT step of the fold runner
(of one of the protocol's runs, or of the final run on all the data) into a
folder that

    from speechbrain.inference.classifiers import EncoderClassifier
    classifier = EncoderClassifier.from_hparams(source=<folder or hub id>)

loads with no network and no code beyond an installed ``speechbrain_sercl``.
The folder holds (:data:`EXPORT_FILES`):

- ``hyperparams.yaml``: the modules SpeechBrain's interface expects
  (``compute_features``, ``mean_var_norm``, ``embedding_model``,
  ``classifier``), the speech model's Hugging Face configuration and
  feature-extractor settings written out inline (so the model is built
  from the folder itself, never downloaded), and a ``pretrainer`` whose
  loadables have no ``paths``: SpeechBrain then fetches ``<name>.ckpt``
  from the source it was given, a local folder or a hub id alike;
- ``ssl.ckpt``, ``pooling.ckpt``, ``classifier.ckpt``: state dicts, read
  with ``torch.load(..., weights_only=True)`` and loaded strictly;
- ``label_encoder.ckpt``: SpeechBrain's ``CategoricalEncoder`` text file
  (the Pretrainer fetches ``<loadable>.ckpt`` from the default source, so
  the file keeps that name);
- ``README.md``: a model card with Hugging Face metadata: the step's test
  results, or for the final run (nothing held out) what it was trained on
  and the cross-validated results of the same protocol.

Loading instantiates the classes named in ``hyperparams.yaml``: load only
folders from sources you trust (``sercl predict`` checks the targets).

Authors
 * speechbrain-sercl developers
"""

import json
import os
import re
import shutil
import tempfile
from importlib import resources

import torch
from ruamel.yaml import YAML

from speechbrain_sercl import layout
from speechbrain_sercl.atomic import writing_folder_atomically
from speechbrain_sercl.checkpoints import AtomicCheckpointer
from speechbrain_sercl.config import RUN_KEY, run_key
from speechbrain_sercl.inference.hparams_trust import export_problems
from speechbrain_sercl.method.registry import METHODS, method_names
from speechbrain_sercl.method.sources import speech_model_settings
from speechbrain_sercl.step_records import read_record
from speechbrain_sercl.transfer import load_tensors

__all__ = [
    "EXPORT_FILES",
    "HPARAMS_FILE",
    "InvalidExportError",
    "MODEL_CARD_FILE",
    "export_step",
    "inference_hparams",
    "validate_export",
]

HPARAMS_FILE = "hyperparams.yaml"
MODEL_CARD_FILE = "README.md"
LABEL_ENCODER_FILE = "label_encoder.ckpt"
EXPORT_FILES = (
    HPARAMS_FILE,
    "ssl.ckpt",
    "pooling.ckpt",
    "classifier.ckpt",
    LABEL_ENCODER_FILE,
    MODEL_CARD_FILE,
)
_PLACEHOLDER = re.compile(r"^(\w+): !PLACEHOLDER$", re.MULTILINE)


class InvalidExportError(ValueError):
    """A folder that is not a complete inference folder of ours."""


def validate_export(folder):
    """Check, without loading anything, that a folder is a complete export.

    Arguments
    ---------
    folder : str or os.PathLike
        The folder to check.

    Raises
    ------
    InvalidExportError
        If the folder does not exist, lacks a file or holds an empty one,
        or its ``hyperparams.yaml`` is not of the shape ``sercl predict``
        loads
        (:func:`speechbrain_sercl.inference.hparams_trust.export_problems`: its
        first difference, and how many more). The message names the folder and
        every problem.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> try:
    ...     validate_export(folder)
    ... except InvalidExportError as error:
    ...     print(str(error).split(": ", 1)[1][:41])
    hyperparams.yaml is missing; ssl.ckpt is
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise InvalidExportError(f"{folder} is not a folder")
    problems = [
        f"{name} is missing" if not os.path.exists(path) else f"{name} is empty"
        for name, path in _paths(folder)
        if not os.path.exists(path) or os.path.getsize(path) == 0
    ]
    hparams_path = os.path.join(folder, HPARAMS_FILE)
    if os.path.isfile(hparams_path):
        with open(hparams_path, encoding="utf-8", errors="replace") as stream:
            differences = export_problems(stream.read())
        if differences:
            more = len(differences) - 1
            also = f" (and {more} more)" if more else ""
            problems.append(f"{HPARAMS_FILE}, {differences[0]}{also}")
    if problems:
        raise InvalidExportError(
            f"{folder} is not an inference folder of speechbrain_sercl "
            f"(`sercl export` writes them): {'; '.join(problems)}"
        )


def _paths(folder):
    """``(name, path)`` of every file an export holds."""
    return [(name, os.path.join(folder, name)) for name in EXPORT_FILES]


def export_step(step_folder, output_folder, overwrite=False):
    """Write the inference folder of a trained stage-2 or FT step.

    The weights are those the step tested (or, in the final run, trained
    last): its latest complete checkpoint (pooling and classifier; the
    speech model too for FT) and, for stage 2, the stage-1 speech model it
    loaded (``save/stage1/ssl.ckpt``). The folder is written next to
    ``output_folder`` and moved into place, so a failed export leaves
    nothing half-written.

    Arguments
    ---------
    step_folder : str or os.PathLike
        A finished step: ``<experiment>/<protocol>/<fold_<i> or final>/
        <corpus>/<classifier or finetune>``.
    output_folder : str or os.PathLike
        The folder to write (must not exist unless ``overwrite``).
    overwrite : bool
        Replace an existing ``output_folder``.

    Returns
    -------
    str
        ``output_folder``.

    Raises
    ------
    ValueError
        If the step is not a finished stage-2 or FT step, a file it needs
        is missing, or ``output_folder`` exists.
    """
    step_folder = os.fspath(step_folder)
    output_folder = os.fspath(output_folder)
    step = read_step(step_folder)
    if os.path.exists(output_folder) and not overwrite:
        raise ValueError(
            f"{output_folder} exists; choose another folder or overwrite it"
        )
    with writing_folder_atomically(output_folder) as staging:
        _write_export(step, staging)
        validate_export(staging)
    return output_folder


def read_step(step_folder):
    """What an export needs from a finished step: settings and files.

    Arguments
    ---------
    step_folder : str
        A finished stage-2 or FT step folder: tested (a run of the
        protocol) or trained (the final run), see
        :func:`speechbrain_sercl.layout.finished_file`.

    Returns
    -------
    dict
        ``method``, ``corpus``, ``protocol``, ``run``, ``seed``,
        ``ssl_source``, ``pretrained_folder``, ``checkpoint`` (folder),
        ``ssl_file``, ``label_file``, ``step_folder``.

    Raises
    ------
    ValueError
        Naming the step and what it lacks.
    speechbrain_sercl.checkpoints.CheckpointError
        When its latest complete checkpoint is damaged (naming the file).
    """
    method = os.path.basename(os.path.normpath(step_folder))
    if method not in method_names(exported=True):
        raise ValueError(
            f"{step_folder} is a {method!r} step; export a stage-2 "
            f"('classifier') or FT ('finetune') step folder"
        )
    settings = _step_settings(step_folder)
    finished = layout.finished_file(step_folder, settings["run"])
    if not os.path.isfile(finished):
        todo = "train" if layout.is_final(settings["run"]) else "train and test"
        raise ValueError(
            f"{step_folder} has not finished (no "
            f"{os.path.basename(finished)}): {todo} it first"
        )
    save = layout.save_folder(step_folder)
    checkpoint = AtomicCheckpointer(save).find_checkpoint()
    if checkpoint is None:
        raise ValueError(f"{step_folder}: no complete checkpoint in {save}")
    if method == "classifier":
        ssl_file = os.path.join(
            layout.stage1_copy_folder(save), layout.ENCODER_FILE
        )
    else:
        ssl_file = os.path.join(checkpoint.path, layout.ENCODER_FILE)
    label_file = os.path.join(save, layout.LABEL_ENCODER_FILE)
    for path in (ssl_file, label_file):
        if not os.path.isfile(path):
            raise ValueError(f"{step_folder}: {path} is missing")
    return {
        **settings,
        "method": method,
        "checkpoint": str(checkpoint.path),
        "ssl_file": ssl_file,
        "label_file": label_file,
        "step_folder": step_folder,
    }


def _step_settings(step_folder):
    """The settings of a step from its ``hyperparams.yaml`` (read, not
    instantiated: nothing is built or downloaded)."""
    path = os.path.join(step_folder, HPARAMS_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"{step_folder} is not a step folder: no {path}")
    with open(path, encoding="utf-8") as stream:
        values = YAML(typ="rt").load(stream)
    keys = ("corpus", "protocol", run_key(values, path), "seed", "ssl_source")
    missing = [key for key in keys if key not in values]
    if missing:
        raise ValueError(f"{path} lacks {missing}")
    settings = {key: _plain(values[key]) for key in keys}
    settings[RUN_KEY] = settings.pop(keys[2])
    settings["pretrained_folder"] = _plain(values.get("pretrained_folder"))
    return settings


def _plain(value):
    """A YAML scalar as a plain Python value."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    return str(value)


def _write_export(step, folder):
    """Write every file of the export of ``step`` into ``folder``."""
    checkpoint = step["checkpoint"]
    states = {
        "ssl": load_tensors(step["ssl_file"]),
        "pooling": load_tensors(os.path.join(checkpoint, "pooling.ckpt")),
        "classifier": load_tensors(os.path.join(checkpoint, "classifier.ckpt")),
    }
    for name, state in states.items():
        torch.save(state, os.path.join(folder, f"{name}.ckpt"))
    shutil.copyfile(
        step["label_file"], os.path.join(folder, LABEL_ENCODER_FILE)
    )
    config, extractor = speech_model_settings(
        step["ssl_source"], step["pretrained_folder"] or tempfile.gettempdir()
    )
    sizes = _classifier_sizes(states["classifier"])
    with open(os.path.join(folder, HPARAMS_FILE), "w", encoding="utf-8") as f:
        f.write(
            inference_hparams(
                config, extractor, sizes["n_classes"], sizes["hidden_size"]
            )
        )
    with open(
        os.path.join(folder, MODEL_CARD_FILE), "w", encoding="utf-8"
    ) as f:
        f.write(model_card(step, config, _labels(step["label_file"])))


def inference_hparams(config, extractor, n_classes, classifier_hidden_size):
    """The ``hyperparams.yaml`` of an export: the template, filled.

    ``sercl predict`` loads only files of this shape
    (:mod:`speechbrain_sercl.inference.hparams_trust`).

    Arguments
    ---------
    config : dict
        The speech model's Hugging Face configuration.
    extractor : dict
        Its feature-extractor settings.
    n_classes : int
        The classifier's outputs.
    classifier_hidden_size : int
        The classifier's hidden layer.

    Returns
    -------
    str
        The YAML text.

    Example
    -------
    >>> from speechbrain_sercl.inference.hparams_trust import export_problems
    >>> config = {"model_type": "wavlm", "hidden_size": 8}
    >>> text = inference_hparams(config, {"sampling_rate": 16000}, 4, 16)
    >>> "n_classes: 4" in text, export_problems(text)
    (True, [])
    """
    values = {
        "sample_rate": extractor["sampling_rate"],
        "n_classes": n_classes,
        "hidden_size": config["hidden_size"],
        "classifier_hidden_size": classifier_hidden_size,
        "speech_model_config": config,
        "feature_extractor_config": extractor,
    }
    return fill_placeholders(_template("inference.yaml"), values)


def _classifier_sizes(state):
    """Hidden size and class count of an ``EmotionClassifier`` state."""
    return {
        "hidden_size": state["layers.0.weight"].shape[0],
        "n_classes": state["layers.2.weight"].shape[0],
    }


def fill_placeholders(template, values):
    """Replace each ``key: !PLACEHOLDER`` line of a YAML template.

    Values are written as JSON, which YAML reads back as the same value.

    Arguments
    ---------
    template : str
        YAML text with top-level ``key: !PLACEHOLDER`` lines.
    values : dict
        A value for every placeholder.

    Returns
    -------
    str
        The filled YAML.

    Raises
    ------
    ValueError
        If a placeholder has no value or a value has no placeholder.

    Example
    -------
    >>> print(fill_placeholders("a: !PLACEHOLDER\\nb: 1\\n", {"a": [1, 2]}))
    a: [1, 2]
    b: 1
    <BLANKLINE>
    """
    placeholders = _PLACEHOLDER.findall(template)
    if sorted(placeholders) != sorted(values):
        raise ValueError(
            f"placeholders {sorted(placeholders)} but values for "
            f"{sorted(values)}"
        )
    return _PLACEHOLDER.sub(
        lambda match: f"{match[1]}: {json.dumps(values[match[1]])}", template
    )


def _template(name):
    """The text of a template shipped with the package."""
    return (
        resources.files("speechbrain_sercl")
        .joinpath("templates", name)
        .read_text(encoding="utf-8")
    )


def _labels(label_file):
    """The emotions of a SpeechBrain label file, in index order."""
    from speechbrain.dataio.encoder import CategoricalEncoder

    encoder = CategoricalEncoder()
    encoder.load(label_file)
    return [encoder.ind2lab[index] for index in sorted(encoder.ind2lab)]


def model_card(step, config, classes, source="<user>/<model>"):
    """The ``README.md`` of an export: Hub metadata, use, results.

    Arguments
    ---------
    step : dict
        From :func:`read_step`.
    config : dict
        The speech model's configuration.
    classes : list of str
        The emotions, in the classifier's order.
    source : str
        What the usage example loads from.

    Returns
    -------
    str
        Markdown with a YAML metadata header.
    """
    return _template("model_card.md").format(
        model_type=config["model_type"],
        corpus=step["corpus"],
        method_name=METHODS[step["method"]].display_name,
        method_description=METHODS[step["method"]].description,
        classes=", ".join(classes),
        source=source,
        results=_results(step).rstrip("\n"),
        protocol=step["protocol"],
        run=step["run"],
        ssl_source=step["ssl_source"],
        hidden_size=config["hidden_size"],
        seed=step["seed"],
        command=_step_command(step["step_folder"]),
    )


def _results(step):
    """The card's results: the step's test (a run of the protocol), or
    what the final run trained on; then the protocol's cross-validation."""
    finished = layout.finished_file(step["step_folder"], step["run"])
    with open(finished, encoding="utf-8") as stream:
        report = json.load(stream)
    if layout.is_final(step["run"]):
        return _final_results(step, report)
    return _template("results_fold.md").format(
        corpus=step["corpus"],
        protocol=step["protocol"],
        run=step["run"],
        test_count=sum(map(sum, report["confusion"])),
        ua=f"{100 * report['UA']:.2f}",
        wa=f"{100 * report['WA']:.2f}",
        cross_validation=_cross_validation(step),
    )


def _final_results(step, report):
    """What a final-run step trained on (``trained.json``), and the
    protocol's cross-validated results."""
    training = METHODS[step["method"]].final_training.format(
        count=report["train_utterances"], corpus=step["corpus"]
    )
    return _template("results_final.md").format(
        protocol=step["protocol"],
        training=training,
        cross_validation=_cross_validation(step),
    )


def _protocol_summary(step):
    """The entry of the step's corpus and method in the protocol's
    ``results.json`` (next to the runs), or None when there is none."""
    run_folder = os.path.dirname(os.path.dirname(step["step_folder"]))
    results_path = os.path.join(
        os.path.dirname(run_folder), layout.RESULTS_JSON
    )
    try:
        with open(results_path, encoding="utf-8") as stream:
            return json.load(stream)[step["corpus"]][step["method"]]
    except (OSError, KeyError, ValueError):
        return None


def _made_like(step, summary):
    """Whether the protocol's summary is of steps made from the same data
    and settings as this step (their records' ``trained_as`` digests)."""
    try:
        record = read_record(step["step_folder"])
    except ValueError:
        return False
    made = record.get("trained_as") if record else None
    return made is not None and made == summary.get("trained_as")


def _cross_validation(step):
    """A sentence on the protocol's mean over folds, when the runner wrote
    it from steps made the same way as this one."""
    summary = _protocol_summary(step)
    final = layout.is_final(step["run"])
    if summary is not None and not _made_like(step, summary):
        return (
            f"The cross-validated results of protocol `{step['protocol']}` "
            "next to this run are of models made from other data or "
            "settings (their step records differ from this model's), so "
            "none is quoted: run `sercl folds` with this model's settings "
            "for them."
        )
    if summary is None and final:
        return (
            f"No cross-validated results of protocol `{step['protocol']}` "
            f"for this method on {step['corpus']} were found next to this "
            "run: run `sercl folds` with the same settings, without "
            "`--final`, for them."
        )
    if summary is None:
        return "The run's other folds were not summarised next to it."
    mean, std, count = summary["mean"], summary["std"], len(summary["folds"])
    scores = (
        f"UA {100 * mean['UA']:.2f} ± {100 * std['UA']:.2f} and WA "
        f"{100 * mean['WA']:.2f} ± {100 * std['WA']:.2f} (mean ± population "
        "standard deviation)"
    )
    if final:
        return (
            f"Cross-validated, protocol `{step['protocol']}` (in the same "
            "experiment folder: one model per fold, each trained the same "
            f"way without that fold and tested on it) gave over {count} "
            f"fold(s): {scores}. This estimates how a model trained this way "
            f"does on unseen {step['corpus']} utterances."
        )
    return f"Over the run's {count} fold(s), one model each: {scores}."


def _step_command(step_folder):
    """The command the fold runner ran for the step, if it logged it."""
    try:
        with open(layout.step_log(step_folder), encoding="utf-8") as log:
            for line in log:
                if line.startswith(layout.COMMAND_PREFIX):
                    return line[len(layout.COMMAND_PREFIX) :].strip()
    except OSError:
        pass
    return f"(not run by the fold runner: see {step_folder}/{HPARAMS_FILE})"
