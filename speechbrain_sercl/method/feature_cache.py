"""The stage-2 feature cache: the frozen speech model's last hidden states,
computed once per utterance and read back in every epoch.

Stage 2 freezes the speech model and runs it in eval mode, so what it
outputs for an utterance never changes during a step. :func:`build_cache`
runs it once per utterance (the whole utterance, alone, in float32, where
the model is) and stores the last hidden states as a float16 ``[T, D]``
tensor, one file per utterance; :class:`CachedFeatures` reads them back
for the data pipeline
(:func:`speechbrain_sercl.data.pipeline.make_dataset` with ``features``).

An entry's file is named by a hash of everything its features depend on:
the speech model's weights and configuration (:func:`model_key`, which
also names the entry's folder), the audio file (absolute path, size and
modification time), the sample rate and ``max_seconds``
(:func:`entry_key`). When any of them changes, the entry has another name
and is computed again; the old file is never read again. Files are written
atomically, so a kill leaves whole entries only, and a build computes only
the entries that are missing (or unreadable), so an interrupted build
resumes where it stopped. Utterances are computed one at a time: an
entry's features do not depend on which other entries a build computed,
so a resumed build gives bitwise the features of an uninterrupted one.

Training crops are cut from the cached frames, not from the audio: a
window of ``frame_count(round(crop_seconds * sample_rate))`` frames (the
frames the CNN makes from a crop of that many samples), placed by the
same per-utterance, per-epoch generator as the audio crop
(:meth:`~speechbrain_sercl.data.pipeline.EpochCrop.generator`), uniformly
over the frame positions. This is not the same as running the model on
the cropped audio: the transformer saw the whole utterance as context.

Example
-------
>>> import numpy, soundfile
>>> from speechbrain_sercl.method.backbone import SSLBackbone
>>> tmp = getfixture("tmp_path")
>>> soundfile.write(tmp / "a.wav", numpy.full(16000, 0.1), 16000)
>>> ssl = SSLBackbone("tiny-wavlm", tmp / "models", stage="classifier")
>>> features = build_cache(tmp / "cache", ssl, [tmp / "a.wav"])
>>> hidden = features.read(tmp / "a.wav")
>>> hidden.shape, hidden.dtype
(torch.Size([50, 32]), torch.float16)
>>> features.frames(0.5)
25
"""

import hashlib
import json
import os
import pickle
from dataclasses import dataclass

import torch
from speechbrain.utils.distributed import run_on_main
from speechbrain.utils.logger import get_logger
from tqdm import tqdm

from speechbrain_sercl.atomic import writing_atomically
from speechbrain_sercl.data.audio import (
    TARGET_SAMPLE_RATE,
    AudioError,
    load_audio,
)
from speechbrain_sercl.method.backbone import frame_count

__all__ = [
    "CACHE_VERSION",
    "CachedFeatures",
    "FeatureCacheError",
    "build_cache",
    "entry_key",
    "model_key",
]

# Bump when what an entry holds, or how it is computed, changes.
CACHE_VERSION = 1
_SUFFIX = ".pt"
_MODEL_FOLDER_DIGITS = 16
logger = get_logger(__name__)


class FeatureCacheError(RuntimeError):
    """A cache entry that cannot be used; the message names its file.

    Example
    -------
    >>> raise FeatureCacheError("c/x.pt: corrupt feature cache entry")
    Traceback (most recent call last):
    ...
    speechbrain_sercl...FeatureCacheError: c/x.pt: corrupt ...
    """


def model_key(ssl):
    """A hash of the speech model's weights and of what shapes its output.

    The sha256 of every tensor of the state dict (name, dtype, shape and
    bytes), the Hugging Face configuration (without the folder it was read
    from), the model type, the waveform normalisation and
    :data:`CACHE_VERSION`.

    Arguments
    ---------
    ssl : speechbrain_sercl.method.backbone.SSLBackbone
        The speech model (possibly wrapped by DDP).

    Returns
    -------
    str
        64 hexadecimal digits.

    Example
    -------
    >>> from speechbrain_sercl.method.backbone import SSLBackbone
    >>> ssl = SSLBackbone("tiny-wavlm", getfixture("tmp_path"))
    >>> first = model_key(ssl)
    >>> with torch.no_grad():
    ...     ssl.hf_model.encoder.layer_norm.bias[0] += 1.0
    >>> model_key(ssl) == first
    False
    """
    ssl = getattr(ssl, "module", ssl)
    digest = hashlib.sha256(_json(_model_settings(ssl)).encode())
    for name, tensor in sorted(ssl.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _model_settings(ssl):
    """What, besides the weights, decides the model's output."""
    config = ssl.hf_model.config.to_dict()
    config.pop("_name_or_path", None)
    return {
        "version": CACHE_VERSION,
        "model_type": ssl.model_type,
        "normalize_wav": bool(ssl.normalize_wav),
        "config": config,
    }


def _json(value):
    """Canonical JSON text of ``value`` (sorted keys)."""
    return json.dumps(value, sort_keys=True, default=str)


def entry_key(model, wav, sample_rate=TARGET_SAMPLE_RATE, max_seconds=None):
    """The hash that names one utterance's entry.

    Arguments
    ---------
    model : str
        :func:`model_key` of the speech model.
    wav : str or os.PathLike
        The audio file.
    sample_rate : int
        The rate the audio is read at.
    max_seconds : float, optional
        The truncation of the audio before the model (None: whole).

    Returns
    -------
    str
        64 hexadecimal digits: a sha256 of the model key, the file's
        absolute path, size and modification time (ns), the sample rate
        and ``max_seconds``.

    Raises
    ------
    AudioError
        If the audio file does not exist.

    Example
    -------
    >>> import os, pathlib
    >>> wav = pathlib.Path(getfixture("tmp_path")) / "a.wav"
    >>> _ = wav.write_bytes(b"RIFF")
    >>> first = entry_key("m", wav)
    >>> first == entry_key("m", wav, max_seconds=10.0)
    False
    >>> os.utime(wav, ns=(0, 0))
    >>> first == entry_key("m", wav)
    False
    """
    try:
        stat = os.stat(wav)
    except FileNotFoundError as error:
        raise AudioError(f"{wav}: audio file does not exist") from error
    identity = {
        "model": model,
        "path": os.path.abspath(wav),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sample_rate": sample_rate,
        "max_seconds": max_seconds,
    }
    return hashlib.sha256(_json(identity).encode()).hexdigest()


@dataclass(frozen=True)
class CachedFeatures:
    """Reads the cached features of one speech model and one reading of
    the audio (sample rate, ``max_seconds``); made by :func:`build_cache`.

    Light enough to travel to data-loader workers.

    Arguments
    ---------
    folder : str
        The model's folder in the cache.
    model : str
        :func:`model_key` of the speech model.
    config : transformers.PretrainedConfig
        The speech model's configuration (frame counts, hidden size).
    sample_rate : int
        The rate the audio was read at.
    max_seconds : float or None
        The truncation of the audio before the model.
    """

    folder: str
    model: str
    config: object
    sample_rate: int = TARGET_SAMPLE_RATE
    max_seconds: float = None

    def path(self, wav):
        """The file of an audio file's entry (which may not exist yet).

        Arguments
        ---------
        wav : str or os.PathLike
            The audio file.

        Returns
        -------
        str
            ``<folder>/<entry key>.pt``.
        """
        key = entry_key(self.model, wav, self.sample_rate, self.max_seconds)
        return os.path.join(self.folder, key + _SUFFIX)

    def read(self, wav):
        """The cached last hidden states of an audio file.

        Arguments
        ---------
        wav : str or os.PathLike
            The audio file.

        Returns
        -------
        torch.Tensor
            ``[T, D]``, float16.

        Raises
        ------
        FeatureCacheError
            If the entry is missing (the cache was not built for this
            file, or the file changed since) or unusable; the message
            names the entry's file and the audio file.
        """
        path = self.path(wav)
        problem, entry = _load_entry(path, self)
        if problem is not None:
            raise FeatureCacheError(
                f"{path}: {problem} (features of {wav}); delete the file "
                "and rerun the step: the cache computes missing entries"
            )
        return entry["hidden"]

    def frames(self, seconds):
        """Frames the CNN makes from ``seconds`` of audio.

        Arguments
        ---------
        seconds : float
            A duration (a training crop).

        Returns
        -------
        int
            ``frame_count(round(seconds * sample_rate))``.
        """
        return frame_count(round(seconds * self.sample_rate), self.config)


def _load_entry(path, features):
    """``(problem, entry)``: problem is None for a usable entry."""
    if not os.path.isfile(path):
        return "no such feature cache entry", None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        return f"corrupt feature cache entry ({error})", None
    hidden = entry.get("hidden") if isinstance(entry, dict) else None
    expected = os.path.basename(path)[: -len(_SUFFIX)]
    if not isinstance(hidden, torch.Tensor) or entry.get("key") != expected:
        return "corrupt feature cache entry (not this entry's features)", None
    width = features.config.hidden_size
    shape = tuple(hidden.shape)
    if hidden.dtype != torch.float16 or len(shape) != 2 or shape[1] != width:
        problem = f"{hidden.dtype} {shape}, expected float16 [frames, {width}]"
        return f"corrupt feature cache entry ({problem})", None
    return None, entry


def build_cache(
    folder,
    ssl,
    wavs,
    max_seconds=None,
    sample_rate=TARGET_SAMPLE_RATE,
    progressbar=True,
):
    """Compute the missing entries of some audio files; return the reader.

    The main process computes, the others wait for it (a barrier, as
    SpeechBrain's ``run_on_main``). The model runs where it is (its
    device), in eval mode, on each whole utterance alone; an unreadable
    entry is computed again.

    Arguments
    ---------
    folder : str or os.PathLike
        The cache's root (a step's
        :func:`~speechbrain_sercl.layout.feature_cache_folder`); the
        entries go to ``<folder>/<model key, 16 digits>/``.
    ssl : speechbrain_sercl.method.backbone.SSLBackbone
        The speech model, frozen (``"classifier"`` stage).
    wavs : iterable of str or os.PathLike
        The audio files.
    max_seconds : float, optional
        Truncate longer audio before the model (as the test set does).
    sample_rate : int
        The rate the audio is read at.
    progressbar : bool
        Show a tqdm bar while computing.

    Returns
    -------
    CachedFeatures
        The reader of these entries.

    Raises
    ------
    ValueError
        If the model is not frozen (its features would change in
        training) or returns every layer.
    """
    ssl = getattr(ssl, "module", ssl)
    if ssl.stage != "classifier" or ssl.output_all_hiddens:
        raise ValueError(
            "Only a frozen speech model (stage 'classifier') returning its "
            f"last layer can be cached; got stage {ssl.stage!r} with "
            f"output_all_hiddens={ssl.output_all_hiddens}"
        )
    model = model_key(ssl)
    features = CachedFeatures(
        folder=os.path.join(os.fspath(folder), model[:_MODEL_FOLDER_DIGITS]),
        model=model,
        config=ssl.hf_model.config,
        sample_rate=sample_rate,
        max_seconds=max_seconds,
    )
    run_on_main(
        _compute_missing,
        args=[features, ssl, [os.fspath(w) for w in wavs], progressbar],
    )
    return features


def _compute_missing(features, ssl, wavs, progressbar):
    """Compute and write the entries of ``wavs`` that are not usable."""
    missing = []
    for wav in dict.fromkeys(wavs):
        path = features.path(wav)
        if os.path.isfile(path):
            problem, _ = _load_entry(path, features)
            if problem is None:
                continue
            logger.warning("%s: %s; computing it again", path, problem)
        missing.append(wav)
    if not missing:
        return
    os.makedirs(features.folder, exist_ok=True)
    device = next(ssl.parameters()).device
    for wav in tqdm(
        missing, desc="Caching speech features", disable=not progressbar
    ):
        waveform = load_audio(
            wav, features.sample_rate, max_seconds=features.max_seconds
        )
        with torch.no_grad():
            hidden = ssl(waveform[None].to(device))[0].float().cpu()
        _write_entry(features.path(wav), hidden)


def _write_entry(path, hidden):
    """Write one entry atomically, refusing values float16 cannot hold."""
    stored = hidden.to(torch.float16)
    if not torch.isfinite(stored).all() and torch.isfinite(hidden).all():
        raise FeatureCacheError(
            f"{path}: features beyond the float16 range (largest magnitude "
            f"{hidden.abs().max().item():.3g}); set use_feature_cache: False"
        )
    entry = {"key": os.path.basename(path)[: -len(_SUFFIX)], "hidden": stored}
    with writing_atomically(path) as tmp_path:
        torch.save(entry, tmp_path)
