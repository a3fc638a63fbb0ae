"""Self-contained inference folders that SpeechBrain's ``EncoderClassifier``
loads.

:func:`export_step` turns a trained stage-2 or FT step of the fold runner
into a folder that

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
- ``README.md``: a model card with Hugging Face metadata.

Loading instantiates the classes named in ``hyperparams.yaml``: load only
folders from sources you trust (``sercl predict`` checks the targets).

Authors
 * speechbrain-sercl developers
"""

import os
import re

__all__ = [
    "EXPORT_FILES",
    "HPARAMS_FILE",
    "InvalidExportError",
    "MODEL_CARD_FILE",
    "validate_export",
]

HPARAMS_FILE = "hyperparams.yaml"
MODEL_CARD_FILE = "README.md"
WEIGHT_FILES = ("ssl.ckpt", "pooling.ckpt", "classifier.ckpt")
LABEL_ENCODER_FILE = "label_encoder.ckpt"
EXPORT_FILES = (
    HPARAMS_FILE,
    *WEIGHT_FILES,
    LABEL_ENCODER_FILE,
    MODEL_CARD_FILE,
)
REQUIRED_KEYS = (
    "compute_features",
    "mean_var_norm",
    "embedding_model",
    "classifier",
    "label_encoder",
    "pretrainer",
    "modules",
)
_TOP_LEVEL_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):", re.MULTILINE)


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
        or its ``hyperparams.yaml`` lacks a key ``EncoderClassifier``
        needs. The message names the folder and every problem.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> validate_export(folder)
    Traceback (most recent call last):
    ...
    speechbrain_sercl.export.InvalidExportError: ... hyperparams.yaml is missing; ...
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
        with open(hparams_path, encoding="utf-8") as stream:
            declared = set(_TOP_LEVEL_KEY.findall(stream.read()))
        problems += [
            f"{HPARAMS_FILE} does not declare {key!r}"
            for key in REQUIRED_KEYS
            if key not in declared
        ]
    if problems:
        raise InvalidExportError(
            f"{folder} is not an inference folder of speechbrain_sercl "
            f"(`sercl export` writes them): {'; '.join(problems)}"
        )


def _paths(folder):
    """``(name, path)`` of every file an export holds."""
    return [(name, os.path.join(folder, name)) for name in EXPORT_FILES]
