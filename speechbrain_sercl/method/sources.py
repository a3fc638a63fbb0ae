"""Where a speech model comes from.

The speech model comes from one of three sources:

* a Hugging Face hub id (``microsoft/wavlm-base-plus``,
  ``facebook/hubert-base-ls960``), downloaded by SpeechBrain;
* a local folder holding ``config.json``, ``preprocessor_config.json`` and
  the weights (``model.safetensors`` or ``pytorch_model.bin``);
* a named tiny configuration (:mod:`speechbrain_sercl.method.tiny`), written to
  disk once, for the demo and the tests.

:func:`resolve_source` turns a source into what SpeechBrain's lobes load,
:func:`model_type_of` tells a WavLM from a HuBERT and
:func:`speech_model_settings` reads a model's settings for an export and
:func:`speech_model_identity` says which weights a step starts from.

Authors
 * speechbrain-sercl contributors 2025
"""

import functools
import hashlib
import json
import os
import re

from speechbrain.utils.distributed import run_on_main
from transformers import AutoConfig, Wav2Vec2FeatureExtractor

from speechbrain_sercl.method.model_folders import (
    cache_folder,
    missing_model_files,
)
from speechbrain_sercl.method.tiny import (
    PRETRAINED_TINY_MODELS,
    PRETRAINING_VERSION,
    TINY_MODELS,
    materialise_tiny_model,
    tiny_model_names,
)

__all__ = [
    "MODEL_TYPES",
    "model_type_of",
    "resolve_source",
    "speech_model_identity",
    "speech_model_settings",
]

MODEL_TYPES = ("hubert", "wavlm")  # the speech models SpeechBrain wraps
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def speech_model_settings(source, save_path):
    """The configuration and feature-extractor settings of a speech model.

    Arguments
    ---------
    source : str or os.PathLike
        Tiny model name, local folder or hub id (see :func:`resolve_source`;
        a hub id is read from the local Hugging Face cache when offline).
    save_path : str or os.PathLike
        Folder for tiny models and downloaded hub models.

    Returns
    -------
    config : dict
        The Hugging Face configuration (``to_dict()``).
    feature_extractor : dict
        The feature-extractor settings (``to_dict()``).

    Example
    -------
    >>> config, extractor = speech_model_settings(
    ...     "tiny-hubert", getfixture("tmp_path")
    ... )
    >>> config["model_type"], extractor["do_normalize"]
    ('hubert', True)
    """
    resolved = resolve_source(source, os.fspath(save_path))
    return (
        AutoConfig.from_pretrained(resolved).to_dict(),
        Wav2Vec2FeatureExtractor.from_pretrained(resolved).to_dict(),
    )


def speech_model_identity(source):
    """What a step's fingerprint adds to ``ssl_source`` to name the weights
    it starts from, or None when the name says it all.

    A hub id and a randomly initialised tiny model are named by
    ``ssl_source`` alone; a pretrained tiny model by its pretraining
    version (a new version pretrains differently); a local folder by the
    digest of its files (not of where it is), so that weights replaced in
    the same folder make its steps changed.

    Arguments
    ---------
    source : str or os.PathLike
        Tiny model name, local folder or hub id (see :func:`resolve_source`).

    Returns
    -------
    str or None
        ``"<name>-v<version>"``, ``"sha256:<hex>"`` or None.

    Example
    -------
    >>> speech_model_identity("microsoft/wavlm-base-plus") is None
    True
    >>> speech_model_identity("tiny-wavlm-pretrained")
    'tiny-wavlm-pretrained-v3'
    >>> folder = getfixture("tmp_path")
    >>> _ = (folder / "config.json").write_text("{}")
    >>> speech_model_identity(folder)[:19]
    'sha256:bf941108f49b'
    """
    source = os.fspath(source)
    if source in PRETRAINED_TINY_MODELS:
        return f"{source}-v{PRETRAINING_VERSION}"
    if source in TINY_MODELS or not os.path.isdir(source):
        return None
    files = sorted(
        (
            entry
            for entry in os.scandir(source)
            if entry.is_file() and not entry.name.startswith(".")
        ),
        key=lambda entry: entry.name,
    )
    status = tuple(
        (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
        for entry in files
    )
    return _folder_digest(os.path.abspath(source), status)


@functools.lru_cache(maxsize=8)
def _folder_digest(folder, status):
    """The sha256 of the names and bytes of a folder's files (``status``:
    their names, sizes and modification times, the cache's key)."""
    digest = hashlib.sha256()
    for name, _, _ in status:
        digest.update(f"{name}\0".encode())
        with open(os.path.join(folder, name), "rb") as stream:
            digest.update(hashlib.file_digest(stream, "sha256").digest())
    return "sha256:" + digest.hexdigest()


def resolve_source(source, save_path):
    """Turns a speech model source into what SpeechBrain's lobes accept.

    Arguments
    ---------
    source : str or os.PathLike
        A name in :data:`TINY_MODELS` (materialised under
        ``save_path/<name>``), a local model folder, or a Hugging Face hub
        id ``"org/name"`` (returned unchanged, downloaded later).
    save_path : str or os.PathLike
        Folder for tiny models (and the hub cache of SpeechBrain).

    Returns
    -------
    str
        A local folder or a hub id.

    Raises
    ------
    FileNotFoundError
        If a local folder lacks a required file (the error names them).
    ValueError
        If ``source`` is neither a tiny name, a folder, nor a hub id.

    Example
    -------
    >>> import os
    >>> save_path = str(getfixture("tmp_path"))
    >>> resolve_source("microsoft/wavlm-base-plus", save_path)
    'microsoft/wavlm-base-plus'
    >>> folder = resolve_source("tiny-hubert", save_path)
    >>> folder == os.path.join(save_path, "tiny-hubert")
    True
    """
    source = os.fspath(source)
    if source in PRETRAINED_TINY_MODELS:
        folder = os.path.join(
            cache_folder(), f"{source}-v{PRETRAINING_VERSION}"
        )
        run_on_main(materialise_tiny_model, args=[source, folder])
        return folder
    if source in TINY_MODELS:
        folder = os.path.join(os.fspath(save_path), source)
        # Under DDP transformers writes weights on rank 0 only: the main
        # process writes the folder, the others wait for it.
        run_on_main(materialise_tiny_model, args=[source, folder])
        return folder
    if os.path.exists(source):
        if not os.path.isdir(source):
            raise ValueError(
                f"Speech model source {source!r} is a file; expected a "
                "folder with config.json, preprocessor_config.json and "
                "the weights"
            )
        missing = missing_model_files(source)
        if missing:
            raise FileNotFoundError(
                f"Speech model folder {source!r} lacks: {', '.join(missing)}"
            )
        return source
    if _HUB_ID.match(source):
        return source
    raise ValueError(
        f"Speech model source {source!r} is not a tiny model name "
        f"({', '.join(tiny_model_names())}), an existing folder, nor a "
        "hub id of the form 'org/name'"
    )


def model_type_of(source_folder):
    """Tells whether a speech model is a WavLM or a HuBERT.

    Arguments
    ---------
    source_folder : str or os.PathLike
        A local model folder (its ``config.json`` is read), a tiny model
        name, or a hub id (the type is inferred from the name).

    Returns
    -------
    str
        ``"wavlm"`` or ``"hubert"``.

    Raises
    ------
    ValueError
        If the type is neither, or cannot be inferred from a hub id.

    Example
    -------
    >>> model_type_of("facebook/hubert-base-ls960")
    'hubert'
    >>> model_type_of("tiny-wavlm")
    'wavlm'
    """
    source = os.fspath(source_folder)
    config_file = os.path.join(source, "config.json")
    if source in tiny_model_names():
        base = PRETRAINED_TINY_MODELS.get(source, (source,))[0]
        model_type = TINY_MODELS[base]["model_type"]
    elif os.path.isfile(config_file):
        with open(config_file, encoding="utf-8") as stream:
            model_type = json.load(stream).get("model_type")
        if model_type not in MODEL_TYPES:
            raise ValueError(
                f"{config_file} has model_type {model_type!r}; expected "
                f"one of {', '.join(MODEL_TYPES)}"
            )
    else:
        found = [kind for kind in MODEL_TYPES if kind in source.lower()]
        if len(found) != 1:
            raise ValueError(
                f"Cannot tell the model type of {source!r}: no config.json "
                "there and the name does not contain exactly one of "
                f"{', '.join(MODEL_TYPES)}; pass model_type explicitly"
            )
        model_type = found[0]
    return model_type
