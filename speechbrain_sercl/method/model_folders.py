"""Hugging Face speech model folders written on this machine.

A speech model folder holds ``config.json``, ``preprocessor_config.json``
and the weights, as ``save_pretrained`` writes them. :func:`write_model_folder`
builds one from settings alone (random weights, then an optional
preparation such as pretraining) once, atomically, under a file lock, so
concurrent runs share it; :func:`materialise_from_config` is what an
exported model's ``hyperparams.yaml`` calls to rebuild its speech model
before the pretrainer loads the trained weights.

Authors
 * speechbrain-sercl contributors 2025
"""

import hashlib
import json
import os
import tempfile

import torch
from filelock import FileLock
from transformers import AutoConfig, AutoModel, Wav2Vec2FeatureExtractor

from speechbrain_sercl.atomic import writing_folder_atomically

__all__ = [
    "cache_folder",
    "materialise_from_config",
    "missing_model_files",
    "write_model_folder",
]

# Keys of a saved feature extractor's settings that are not arguments.
_EXTRACTOR_METADATA = ("feature_extractor_type", "processor_class")


_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


def missing_model_files(folder):
    """Lists the files a Hugging Face speech model folder lacks."""
    missing = [
        name
        for name in ("config.json", "preprocessor_config.json")
        if not os.path.isfile(os.path.join(folder, name))
    ]
    if not any(os.path.isfile(os.path.join(folder, w)) for w in _WEIGHT_FILES):
        missing.append("model.safetensors or pytorch_model.bin")
    return missing


def _is_empty_folder(path):
    """Tells whether path is a folder with nothing in it."""
    return os.path.isdir(path) and not os.listdir(path)


def cache_folder():
    """Where models built once for every run are kept.

    ``$SERCL_CACHE``, else ``$XDG_CACHE_HOME/speechbrain_sercl``, else
    ``~/.cache/speechbrain_sercl``.

    Returns
    -------
    str

    Example
    -------
    >>> getfixture("monkeypatch").setenv("SERCL_CACHE", "/data/cache")
    >>> cache_folder()
    '/data/cache'
    """
    if os.environ.get("SERCL_CACHE"):
        return os.environ["SERCL_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "speechbrain_sercl")


def materialise_from_config(config, feature_extractor, folder=None):
    """Writes a speech model folder built from its settings alone.

    An exported model (:mod:`speechbrain_sercl.inference.export`) carries its
    speech model's Hugging Face configuration and feature-extractor settings in
    its ``hyperparams.yaml``: this builds the folder the SpeechBrain lobe
    loads, with random weights that the ``Pretrainer`` then replaces (it
    loads every key strictly), so nothing is downloaded.

    Arguments
    ---------
    config : dict
        The Hugging Face model configuration, with ``model_type``.
    feature_extractor : dict
        The ``Wav2Vec2FeatureExtractor`` settings (sampling rate,
        ``do_normalize``, ...).
    folder : str or os.PathLike, optional
        Where to write it; by default a folder named by a hash of the
        settings in the system's temporary folder, reused when complete.

    Returns
    -------
    str
        The model folder.

    Example
    -------
    >>> from speechbrain_sercl.method.tiny import TINY_MODELS
    >>> config = dict(TINY_MODELS["tiny-hubert"], hidden_size=16)
    >>> folder = materialise_from_config(
    ...     config, {"do_normalize": True}, getfixture("tmp_path") / "m"
    ... )
    >>> AutoConfig.from_pretrained(folder).hidden_size
    16
    """
    if folder is None:
        key = json.dumps([config, feature_extractor], sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        folder = os.path.join(
            tempfile.gettempdir(), "speechbrain_sercl", f"model-{digest}"
        )
    return write_model_folder(config, feature_extractor, folder, 0, "model")


def write_model_folder(
    config, feature_extractor, folder, seed, what, prepare=None
):
    """Writes a model folder once: random weights, then ``prepare(model)``
    if given (see the callers)."""
    folder = os.fspath(folder)
    if os.path.isdir(folder) and not missing_model_files(folder):
        return folder
    if os.path.exists(folder) and not _is_empty_folder(folder):
        raise FileExistsError(
            f"Cannot write {what} to {folder!r}: it exists, is "
            f"not empty and lacks {', '.join(missing_model_files(folder))}"
        )
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    # Separate runs may share the folder: one writes, the others reuse it.
    with FileLock(f"{os.path.abspath(folder)}.lock"):
        if os.path.isdir(folder) and not missing_model_files(folder):
            return folder
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModel.from_config(AutoConfig.for_model(**config))
        if prepare is not None:
            prepare(model)
        extractor = Wav2Vec2FeatureExtractor(
            **{
                key: value
                for key, value in feature_extractor.items()
                if key not in _EXTRACTOR_METADATA
            }
        )
        with writing_folder_atomically(folder) as staging:
            model.save_pretrained(staging)
            extractor.save_pretrained(staging)
    return folder
