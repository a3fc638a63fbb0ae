"""Emotion predictions for audio files with a trained classifier.

:func:`load_classifier` loads an inference folder (``sercl export`` writes
them) or a Hub id as SpeechBrain's ``EncoderClassifier``, after checking
that its ``hyperparams.yaml`` is one an export writes
(:mod:`speechbrain_sercl.inference.hparams_trust`): loading a hyperparameters
file builds the objects it names, that is, runs code chosen by its author.

:func:`predict_files` works with any object that has ``EncoderClassifier``'s
interface: ``classify_batch(wavs, wav_lens)`` returning the log
probabilities ``[batch, classes]`` first, ``hparams.label_encoder`` (a
``CategoricalEncoder``, for the class names) and optionally
``audio_normalizer.sample_rate`` (16 kHz when absent). Audio is read with
soundfile, averaged to mono and resampled to that rate
(:mod:`speechbrain_sercl.data.audio`).

- A file of at most ``max_seconds`` is classified whole. Such files are
  sorted by length and classified ``batch_size`` at a time with relative
  lengths, so that a batch holds little padding.
- A longer file is never loaded whole: it is read in windows of
  ``window_seconds`` every ``hop_seconds``, classified ``batch_size``
  windows at a time; each window gives a row of the file's timeline, and
  the file's probabilities are the mean of its windows' probabilities
  (every window weighs the same, the last, possibly shorter, one too).
  Memory holds one batch of windows, a running sum and the timeline rows,
  whatever the length of the file.
- A file that cannot be used (missing, corrupt, empty, one the model
  fails on or gives non-finite probabilities for) is reported with a
  warning and an ``error`` row; the others are predicted.

The rows are written by :mod:`speechbrain_sercl.inference.predict_io`.

Example
-------
>>> import numpy as np, soundfile as sf, torch
>>> from types import SimpleNamespace
>>> from speechbrain.dataio.encoder import CategoricalEncoder
>>> class Loudness(torch.nn.Module):
...     '''Loud when the peak of the valid samples is above 0.5.'''
...
...     def __init__(self):
...         super().__init__()
...         encoder = CategoricalEncoder()
...         encoder.update_from_iterable(["quiet", "loud"])
...         self.hparams = SimpleNamespace(label_encoder=encoder)
...
...     def classify_batch(self, wavs, wav_lens):
...         valid = (
...             torch.arange(wavs.shape[1]) < wav_lens[:, None] * wavs.shape[1]
...         )
...         loud = 8 * ((wavs.abs() * valid).amax(dim=1) - 0.5)
...         logits = torch.stack([-loud, loud], dim=1)
...         return logits.log_softmax(dim=-1), None, None, None
>>> folder = getfixture("tmp_path")
>>> sf.write(folder / "a.wav", np.full(8000, 0.9), 16000)
>>> sf.write(folder / "b.wav", np.full(4000, 0.1), 16000)
>>> files = [str(folder / "a.wav"), str(folder / "b.wav")]
>>> predictions = predict_files(Loudness(), files)
>>> for prediction in predictions:
...     print(os.path.basename(prediction.file), prediction.probabilities)
a.wav (0.00165..., 0.99834...)
b.wav (0.99834..., 0.00165...)

Authors
 * speechbrain-sercl developers
"""

import logging
import os
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from speechbrain_sercl.data.audio import (
    TARGET_SAMPLE_RATE,
    AudioError,
    audio_format,
    load_audio,
    read_windows,
)
from speechbrain_sercl.data.batching import length_sorted_batches
from speechbrain_sercl.inference.export import HPARAMS_FILE
from speechbrain_sercl.inference.hparams_trust import check_hparams_file

__all__ = [
    "ChunkPrediction",
    "FilePrediction",
    "ModelOutputError",
    "check_options",
    "class_names",
    "load_classifier",
    "predict_files",
]

logger = logging.getLogger(__name__)

# What a model may raise on an input it cannot take (too short, too long
# for memory): the file is reported, the others go on.
MODEL_ERRORS = (RuntimeError, ValueError)
NOT_FINITE = "probabilities not finite (NaN or infinite samples?)"


class ModelOutputError(Exception):
    """A classifier whose outputs do not fit its label encoder."""


@dataclass
class ChunkPrediction:
    """The prediction for one window of a long file.

    Arguments
    ---------
    start : float
        Start of the window in the file, in seconds.
    end : float
        End of the window, in seconds.
    probabilities : tuple of float
        One per class, in the label encoder's index order.
    """

    start: float
    end: float
    probabilities: tuple


@dataclass
class FilePrediction:
    """The prediction for one file, or why there is none.

    Arguments
    ---------
    file : str
        The file as it was listed.
    probabilities : tuple of float, optional
        One per class, in the label encoder's index order (for a windowed
        file, the mean over its windows); None when the file failed.
    error : str, optional
        Why the file has no prediction; None when it has one.
    chunks : list of ChunkPrediction, optional
        The timeline of a windowed file; None for a file classified whole.
    """

    file: str
    probabilities: tuple = None
    error: str = None
    chunks: list = None


def load_classifier(
    model, savedir=None, trust_remote_config=False, run_opts=None
):
    """Load an ``EncoderClassifier`` after checking its hyperparameters.

    The model's ``hyperparams.yaml`` is fetched by SpeechBrain's own
    ``fetch`` (from the folder, or from the Hugging Face Hub with
    ``huggingface_hub.hf_hub_download``, which honours ``HF_HUB_OFFLINE``;
    into ``savedir`` when one is given) and read once. Loading a
    hyperparameters file builds what it names, so, unless
    ``trust_remote_config``, the text is refused before anything is built
    when it is not the shape ``sercl export`` writes
    (:func:`speechbrain_sercl.inference.hparams_trust.check_hparams_text`). The
    text checked is the text loaded: the classifier is assembled from it as
    SpeechBrain's ``EncoderClassifier.from_hparams`` does (the
    ``Pretrainer`` collects ``<name>.ckpt`` from the same source), rather
    than by reading the file again, which a folder being written or a Hub
    repository updated in between could have changed. Weights are read as
    plain tensors (:func:`speechbrain_sercl.transfer.load_tensors`).

    Arguments
    ---------
    model : str or os.PathLike
        An inference folder or a Hugging Face Hub model id.
    savedir : str or os.PathLike, optional
        Where SpeechBrain links or copies the model's files.
    trust_remote_config : bool
        Load whatever ``hyperparams.yaml`` names: only for a model whose
        source you trust as you trust code you run.
    run_opts : dict, optional
        SpeechBrain run options (``{"device": "cuda:0"}``).

    Returns
    -------
    speechbrain.inference.classifiers.EncoderClassifier
        The classifier, frozen, in evaluation mode.

    Raises
    ------
    FileNotFoundError
        If ``model`` is no folder and no Hub id with a ``hyperparams.yaml``.
    speechbrain_sercl.inference.hparams_trust.UntrustedHparamsError
        If ``hyperparams.yaml`` is not an export's (one line: the file, the
        line and what is refused there).
    speechbrain_sercl.checkpoints.CheckpointError
        If a weights file is not plain tensors or does not fit.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> _ = (folder / "hyperparams.yaml").write_text("x: !name:os.system")
    >>> load_classifier(folder)
    Traceback (most recent call last):
    ...
    speechbrain_sercl...UntrustedHparamsError: ...os.system...
    """
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.inference.classifiers import EncoderClassifier

    model = os.fspath(model)
    hparams_path = _fetch_hparams(model, savedir)
    if trust_remote_config:
        with open(hparams_path, encoding="utf-8") as stream:
            text = stream.read()
    else:
        text = check_hparams_file(hparams_path)
    # SpeechBrain's pretrained_from_hparams, on the text read above.
    hparams = load_hyperpyyaml(text)
    hparams["savedir"] = savedir
    pretrainer = hparams["pretrainer"]
    pretrainer.set_collect_in(savedir)
    pretrainer.collect_files(default_source=model)
    pretrainer.load_collected()
    return EncoderClassifier(
        modules=hparams["modules"], hparams=hparams, run_opts=run_opts
    )


def _fetch_hparams(model, savedir):
    """The local path of the model's ``hyperparams.yaml``."""
    from speechbrain.utils.fetching import fetch

    try:
        return fetch(HPARAMS_FILE, source=model, savedir=savedir)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"{model}: no such folder, and no {HPARAMS_FILE} found for it "
            f"as a Hugging Face model id ({error})"
        ) from error


def class_names(classifier):
    """The class names of a classifier, in index order.

    Arguments
    ---------
    classifier : object
        Anything with ``hparams.label_encoder``, a ``CategoricalEncoder``.

    Returns
    -------
    list of str
        ``label_encoder.ind2lab[i]`` for every index ``i``.

    Example
    -------
    >>> from types import SimpleNamespace
    >>> from speechbrain.dataio.encoder import CategoricalEncoder
    >>> encoder = CategoricalEncoder()
    >>> encoder.update_from_iterable(["sad", "angry"])
    >>> class_names(
    ...     SimpleNamespace(hparams=SimpleNamespace(label_encoder=encoder))
    ... )
    ['sad', 'angry']
    """
    encoder = classifier.hparams.label_encoder
    return [str(encoder.ind2lab[index]) for index in range(len(encoder))]


def check_options(batch_size, max_seconds, window_seconds, hop_seconds):
    """Raise ValueError unless the options of :func:`predict_files` fit.

    Example
    -------
    >>> check_options(8, 30.0, 10.0, 5.0)
    >>> check_options(8, 30.0, 5.0, 10.0)
    Traceback (most recent call last):
    ...
    ValueError: the hop (10.0 s) must not exceed the window (5.0 s)
    """
    if not (isinstance(batch_size, int) and batch_size > 0):
        raise ValueError(f"batch_size must be a positive integer: {batch_size}")
    for name, value in [
        ("max_seconds", max_seconds),
        ("window_seconds", window_seconds),
        ("hop_seconds", hop_seconds),
    ]:
        if not value > 0:
            raise ValueError(f"{name} must be positive: {value}")
    if hop_seconds > window_seconds:
        raise ValueError(
            f"the hop ({hop_seconds} s) must not exceed the window "
            f"({window_seconds} s)"
        )


def predict_files(
    classifier,
    files,
    batch_size=8,
    max_seconds=30.0,
    window_seconds=10.0,
    hop_seconds=5.0,
    progress=False,
):
    """Predict the emotion of every file; a bad file never stops the rest.

    Arguments
    ---------
    classifier : object
        ``EncoderClassifier`` or anything with its ``classify_batch``.
    files : list of str
        The audio files
        (:func:`speechbrain_sercl.inference.predict_io.collect_audio_files`).
    batch_size : int
        Files, or windows of a long file, classified at once.
    max_seconds : float
        Longer files are read and classified in windows.
    window_seconds : float
        Length of a window of a long file.
    hop_seconds : float
        Time between the starts of two windows (at most the window).
    progress : bool
        Show a progress bar (seconds of audio) on standard error.

    Returns
    -------
    list of FilePrediction
        One per file, in the order of ``files``.

    Example
    -------
    >>> import torch
    >>> from types import SimpleNamespace
    >>> from speechbrain.dataio.encoder import CategoricalEncoder
    >>> encoder = CategoricalEncoder()
    >>> encoder.update_from_iterable(["neutral"])
    >>> always = SimpleNamespace(
    ...     hparams=SimpleNamespace(label_encoder=encoder),
    ...     classify_batch=lambda wavs, lens: (torch.zeros(len(wavs), 1),),
    ... )
    >>> predict_files(always, ["missing.wav"])[0].error
    'missing.wav: audio file does not exist'
    """
    check_options(batch_size, max_seconds, window_seconds, hop_seconds)
    sample_rate = _sample_rate(classifier)
    results, durations = {}, {}
    for file in dict.fromkeys(files):
        try:
            durations[file] = _duration(file)
        except AudioError as error:
            results[file] = _failed(file, str(error))
    short = [file for file in durations if durations[file] <= max_seconds]
    batches = length_sorted_batches(
        [durations[file] for file in short], batch_size
    )
    bar = tqdm(
        total=sum(durations.values()),
        unit="s",
        unit_scale=True,
        desc="Predicting",
        disable=not progress,
    )
    with bar:
        for indices in batches:
            batch = [short[index] for index in indices]
            results.update(_predict_whole(classifier, batch, sample_rate))
            bar.update(sum(durations[file] for file in batch))
        for file in durations:
            if durations[file] > max_seconds:
                results[file] = _predict_windows(
                    classifier,
                    file,
                    sample_rate,
                    batch_size,
                    (window_seconds, hop_seconds),
                    bar,
                )
    return [results[file] for file in files]


def _sample_rate(classifier):
    """The rate the classifier expects (its audio normalizer's, or 16 kHz)."""
    normalizer = getattr(classifier, "audio_normalizer", None)
    return getattr(normalizer, "sample_rate", TARGET_SAMPLE_RATE)


def _duration(file):
    """The length of a file in seconds, from its header; empty is an error."""
    found = audio_format(file)
    if found.frames == 0:
        raise AudioError(f"{file}: audio file has no samples")
    return found.duration


def _failed(file, error):
    """Warn about a file that has no prediction, and say why."""
    logger.warning("Skipping %s", error)
    return FilePrediction(file, error=error)


def _predict_whole(classifier, files, sample_rate):
    """Predict files classified whole, as one batch; ``{file: result}``."""
    results, waveforms = {}, {}
    for file in files:
        try:
            waveforms[file] = load_audio(file, sample_rate=sample_rate)
        except AudioError as error:
            results[file] = _failed(file, str(error))
    for file, found in _classify(classifier, waveforms).items():
        if isinstance(found, Exception):
            results[file] = _failed(file, _model_failure(file, found))
        else:
            results[file] = FilePrediction(file, tuple(found.tolist()))
    return results


def _predict_windows(classifier, file, sample_rate, batch_size, window, bar):
    """Predict a long file window by window; keep a sum, not the audio."""
    chunks, total = [], 0.0
    try:
        with closing(read_windows(file, *window, sample_rate)) as windows:
            for batch in _batches(windows, batch_size):
                found = _classify(classifier, {(s, e): w for s, e, w in batch})
                failure = _window_failure(file, found)
                if failure:
                    return _failed(file, failure)
                done = chunks[-1].end if chunks else 0.0
                for (start, end), probabilities in found.items():
                    chunks.append(
                        ChunkPrediction(
                            start, end, tuple(probabilities.tolist())
                        )
                    )
                    total = total + probabilities
                bar.update(chunks[-1].end - done)
    except AudioError as error:
        return _failed(file, str(error))
    mean = total / len(chunks)
    return FilePrediction(file, tuple(mean.tolist()), chunks=chunks)


def _window_failure(file, found):
    """The message for the first window the classifier failed on, or None."""
    for (start, end), probabilities in found.items():
        if isinstance(probabilities, Exception):
            failure = _model_failure(file, probabilities)
            return f"{failure} on {start:g}-{end:g} s"
    return None


def _batches(items, size):
    """Lists of ``size`` consecutive items (the last may be shorter)."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _model_failure(file, error):
    """The message for a file the classifier failed on."""
    return f"{file}: the classifier failed ({type(error).__name__}: {error})"


def _classify(classifier, waveforms):
    """Class probabilities per key of ``waveforms``, or the model's error.

    The waveforms are classified as one batch; when the model fails on it,
    each is classified alone, so that one bad input fails alone. Non-finite
    probabilities count as a failure of that input.
    """
    if not waveforms:
        return {}
    try:
        probabilities = _probabilities(classifier, list(waveforms.values()))
    except MODEL_ERRORS as error:
        if len(waveforms) == 1:
            return dict.fromkeys(waveforms, error)
        found = {}
        for key, waveform in waveforms.items():
            found.update(_classify(classifier, {key: waveform}))
        return found
    return {
        key: found if np.isfinite(found).all() else ValueError(NOT_FINITE)
        for key, found in zip(waveforms, probabilities, strict=True)
    }


def _probabilities(classifier, waveforms):
    """Classify a batch of 1-D waveforms; probabilities ``[batch, classes]``.

    The batch is padded with zeros to its longest waveform (in a numpy
    array, which ``tracemalloc`` sees) and handed over with lengths
    relative to it, as SpeechBrain's ``wav_lens``.
    """
    lengths = [waveform.shape[0] for waveform in waveforms]
    longest = max(lengths)
    padded = np.zeros((len(waveforms), longest), dtype=np.float32)
    for row, waveform in zip(padded, waveforms, strict=True):
        row[: waveform.shape[0]] = waveform.numpy()
    relative = torch.tensor(lengths, dtype=torch.float32) / longest
    with torch.no_grad():
        log_probabilities = classifier.classify_batch(
            torch.from_numpy(padded), relative
        )[0]
    log_probabilities = log_probabilities.reshape(len(waveforms), -1)
    classes = len(classifier.hparams.label_encoder)
    if log_probabilities.shape[1] != classes:
        raise ModelOutputError(
            f"the classifier gives {log_probabilities.shape[1]} "
            f"probabilities per input, its label encoder has {classes} classes"
        )
    return torch.softmax(log_probabilities.double(), dim=-1).cpu().numpy()
