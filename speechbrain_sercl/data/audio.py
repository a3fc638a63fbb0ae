"""Robust audio reading: the one place where the package opens a sound file.

Every pipeline (preparation, training, inference) reads audio through
:func:`load_audio`, which returns a mono float32 waveform at 16 kHz whatever
the file holds (any channel count, any sample rate readable by soundfile).
:func:`inspect_audio` and :func:`validate_audio` look at a file without
converting it, so that corpus readers can skip broken files and warn about
suspicious ones before training ever sees them. :func:`read_windows` reads
a long file window by window, never whole, for inference on recordings of
any length. Mixing channels down and
resampling are normal conversions, not oddities:
:func:`reading_conversions` names those a file will get, so that readers
can count them. A WAV file cut short (its header promises more samples
than it holds) is read as far as it goes, with a warning naming it once
(:func:`truncation_warning`); preparation lists it among its warnings.

Example
-------
>>> import numpy as np, soundfile as sf
>>> path = getfixture("tmp_path") / "tone.wav"
>>> sf.write(path, 0.1 * np.ones((8000, 2)), 8000)
>>> load_audio(path).shape
torch.Size([16000])
"""

import logging
import math
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional

__all__ = [
    "TARGET_SAMPLE_RATE",
    "CLIPPING_LEVEL",
    "CLIPPED_FRACTION_WARNING",
    "AudioError",
    "AudioFormat",
    "AudioInfo",
    "audio_format",
    "inspect_audio",
    "load_audio",
    "random_crop",
    "read_windows",
    "reading_conversions",
    "truncation_warning",
    "validate_audio",
]

TARGET_SAMPLE_RATE = 16000
# A sample at or above this magnitude (full scale is 1.0) counts as clipped.
CLIPPING_LEVEL = 0.999
# validate_audio warns when more than this fraction of samples is clipped.
CLIPPED_FRACTION_WARNING = 0.001
# The data size a WAV written as a stream (length unknown) puts in its
# header: it promises nothing (libsndfile reads such a file to its end).
_UNKNOWN_WAV_SIZE = 0xFFFFFFFF
logger = logging.getLogger(__name__)
_warned_truncated = set()  # files already warned about in this process


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file.

    Example
    -------
    >>> raise AudioError("a.wav: has no samples")
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.audio.AudioError: a.wav: has no samples
    """


@dataclass(frozen=True)
class AudioFormat:
    """What a sound file's header says, read without the samples.

    Arguments
    ---------
    sample_rate : int
        Samples per second per channel.
    channels : int
        Number of channels.
    frames : int
        Number of samples per channel.

    Example
    -------
    >>> AudioFormat(22050, 2, 11025).duration
    0.5
    """

    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self):
        """Length in seconds (``frames / sample_rate``)."""
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class AudioInfo:
    """What a sound file holds, read without any conversion.

    Arguments
    ---------
    sample_rate : int
        Samples per second per channel.
    channels : int
        Number of channels.
    frames : int
        Number of samples per channel.
    duration : float
        Length in seconds (``frames / sample_rate``).
    peak : float
        Largest absolute sample value (full scale is 1.0).
    rms : float
        Root mean square over all samples of all channels.
    clipped_fraction : float
        Fraction of samples whose magnitude reaches ``CLIPPING_LEVEL``.

    Example
    -------
    >>> info = AudioInfo(16000, 1, 8000, 0.5, 0.5, 0.1, 0.0)
    >>> info.duration
    0.5
    """

    sample_rate: int
    channels: int
    frames: int
    duration: float
    peak: float
    rms: float
    clipped_fraction: float


def _read(path):
    """Read every sample of ``path`` as a (frames, channels) float32 array."""
    if not os.path.isfile(path):
        raise AudioError(f"{path}: audio file does not exist")
    try:
        samples, sample_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as error:
        raise _unreadable(path, error) from error
    return samples, sample_rate


def _unreadable(path, error):
    """The AudioError for a file that soundfile cannot open."""
    # libsndfile's own words, without soundfile's repetition of the path.
    problem = getattr(error, "error_string", None) or str(error)
    return AudioError(f"{path}: unreadable audio ({problem})")


def _check_positive(name, value):
    """Raise ValueError unless ``value`` is None or a positive number."""
    if value is not None and not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def load_audio(
    path,
    sample_rate=TARGET_SAMPLE_RATE,
    max_seconds=None,
    crop_seconds=None,
    generator=None,
):
    """Read a sound file as a mono float32 waveform at ``sample_rate``.

    Channels are averaged, the signal is resampled with
    ``torchaudio.functional.resample`` when the file's rate differs, then a
    random window of ``crop_seconds`` is cut (a signal that is not longer is
    kept whole, never padded), then the result is truncated to
    ``max_seconds``.

    Arguments
    ---------
    path : str or os.PathLike
        The sound file (any format soundfile reads).
    sample_rate : int
        The sample rate of the returned waveform.
    max_seconds : float, optional
        Keep at most this many seconds (from the start of what is left).
    crop_seconds : float, optional
        Cut a random window this long (training-time augmentation).
    generator : torch.Generator, optional
        Draws the crop start; the global torch generator when omitted.

    Returns
    -------
    torch.Tensor
        The waveform, shape ``(samples,)``, dtype float32.

    Raises
    ------
    AudioError
        When the file is missing, unreadable or holds no samples.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> path = getfixture("tmp_path") / "a.wav"
    >>> sf.write(path, np.linspace(-0.5, 0.5, 32000), 16000)
    >>> load_audio(path, max_seconds=0.5).shape
    torch.Size([8000])
    >>> gen = torch.Generator().manual_seed(0)
    >>> crop = load_audio(path, crop_seconds=1.0, generator=gen)
    >>> crop.shape, crop.dtype
    (torch.Size([16000]), torch.float32)
    """
    _check_positive("sample_rate", sample_rate)
    _check_positive("max_seconds", max_seconds)
    _check_positive("crop_seconds", crop_seconds)
    samples, file_rate = _read(path)
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: audio file has no samples")
    _warn_if_truncated(path, samples.shape[0])
    waveform = torch.from_numpy(samples).mean(dim=1)
    if file_rate != sample_rate:
        waveform = torchaudio.functional.resample(
            waveform, file_rate, sample_rate
        )
    if crop_seconds is not None:
        waveform = random_crop(
            waveform, round(crop_seconds * sample_rate), generator
        )
    if max_seconds is not None:
        waveform = waveform[: round(max_seconds * sample_rate)]
    return waveform.contiguous()


def read_windows(
    path, window_seconds, hop_seconds, sample_rate=TARGET_SAMPLE_RATE
):
    """Read a sound file in overlapping windows, never holding it whole.

    Windows start every ``hop_seconds`` and last ``window_seconds``; the
    last one ends at the end of the file (it is shorter when the file does
    not end on a hop), and no window lies inside the previous one: a file
    of ``n`` seconds gives ``1 + ceil(max(0, n - window) / hop)`` windows.
    Each window is read with ``soundfile.SoundFile.read`` (a hop at a time
    after the first) and converted as :func:`load_audio` converts a file
    (channels averaged, then resampled), so a window equals the same
    samples cut into a file of their own and loaded. At most two windows
    of samples are held at once, whatever the file length.

    Arguments
    ---------
    path : str or os.PathLike
        The sound file.
    window_seconds : float
        Length of a window.
    hop_seconds : float
        Time between the starts of two windows, at most ``window_seconds``.
    sample_rate : int
        The sample rate of the returned waveforms.

    Yields
    ------
    start : float
        Start of the window in the file, in seconds.
    end : float
        End of the window, in seconds.
    waveform : torch.Tensor
        The window, shape ``(samples,)``, dtype float32.

    Raises
    ------
    ValueError
        If a length is not positive or the hop is longer than the window.
    AudioError
        When the file is missing or unreadable, or a read fails midway
        (windows before the failure have been yielded).

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> path = getfixture("tmp_path") / "a.wav"
    >>> sf.write(path, np.zeros((12000, 2)), 8000)
    >>> for start, end, waveform in read_windows(path, 0.5, 0.25):
    ...     print(start, end, waveform.shape)
    0.0 0.5 torch.Size([8000])
    0.25 0.75 torch.Size([8000])
    0.5 1.0 torch.Size([8000])
    0.75 1.25 torch.Size([8000])
    1.0 1.5 torch.Size([8000])
    """
    _check_positive("window_seconds", window_seconds)
    _check_positive("hop_seconds", hop_seconds)
    _check_positive("sample_rate", sample_rate)
    if hop_seconds > window_seconds:
        raise ValueError(
            f"hop_seconds ({hop_seconds}) must not exceed window_seconds "
            f"({window_seconds})"
        )
    if not os.path.isfile(path):
        raise AudioError(f"{path}: audio file does not exist")
    try:
        yield from _windows(path, window_seconds, hop_seconds, sample_rate)
    except (sf.SoundFileError, RuntimeError) as error:
        raise _unreadable(path, error) from error


def _windows(path, window_seconds, hop_seconds, sample_rate):
    """The windows of :func:`read_windows`, read a hop at a time."""
    with sf.SoundFile(path) as sound:
        _warn_if_truncated(path, sound.frames)
        file_rate = sound.samplerate
        window = max(1, round(window_seconds * file_rate))
        hop = max(1, min(window, round(hop_seconds * file_rate)))
        samples = sound.read(window, dtype="float32", always_2d=True)
        start = 0
        while samples.shape[0] > 0:
            end = start + samples.shape[0]
            yield (
                start / file_rate,
                end / file_rate,
                _converted(samples, file_rate, sample_rate),
            )
            new = sound.read(hop, dtype="float32", always_2d=True)
            if new.shape[0] == 0:
                return
            samples = np.concatenate([samples[hop:], new])
            start += hop


def _converted(samples, file_rate, sample_rate):
    """A (frames, channels) block as :func:`load_audio` converts a file."""
    waveform = torch.from_numpy(samples.mean(axis=1, dtype=np.float32))
    if file_rate != sample_rate:
        waveform = torchaudio.functional.resample(
            waveform, file_rate, sample_rate
        )
    return waveform


def random_crop(sequence, length, generator=None):
    """Cut a random window of ``length`` steps along the first dimension.

    A sequence that is not longer is kept whole, never padded. Cuts
    waveforms (:func:`load_audio`) and cached frames
    (:mod:`speechbrain_sercl.data.pipeline`) alike.

    Arguments
    ---------
    sequence : torch.Tensor
        Samples ``(samples,)`` or frames ``(frames, features)``.
    length : int
        The window length, in steps of the first dimension.
    generator : torch.Generator, optional
        Draws the start (uniform over the possible starts); the global
        torch generator when omitted.

    Returns
    -------
    torch.Tensor
        A view of ``sequence``.

    Example
    -------
    >>> frames = torch.arange(10.0)[:, None].expand(10, 2)
    >>> crop = random_crop(frames, 4, torch.Generator().manual_seed(0))
    >>> crop.shape, bool((crop[1:, 0] - crop[:-1, 0] == 1).all())
    (torch.Size([4, 2]), True)
    >>> random_crop(frames, 20).shape
    torch.Size([10, 2])
    """
    if sequence.shape[0] <= length:
        return sequence
    last_start = sequence.shape[0] - length
    start = int(torch.randint(0, last_start + 1, (1,), generator=generator))
    return sequence[start : start + length]


def audio_format(path):
    """Sample rate, channels and length of a sound file, from its header.

    Arguments
    ---------
    path : str or os.PathLike
        The sound file.

    Returns
    -------
    AudioFormat
        What the header says.

    Raises
    ------
    AudioError
        When the file is missing or its header is unreadable.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> path = getfixture("tmp_path") / "a.wav"
    >>> sf.write(path, np.zeros((11025, 2)), 22050)
    >>> audio_format(path)
    AudioFormat(sample_rate=22050, channels=2, frames=11025)
    """
    if not os.path.isfile(path):
        raise AudioError(f"{path}: audio file does not exist")
    try:
        info = sf.info(path)
    except (sf.SoundFileError, RuntimeError) as error:
        raise _unreadable(path, error) from error
    return AudioFormat(info.samplerate, info.channels, info.frames)


def reading_conversions(audio, sample_rate=TARGET_SAMPLE_RATE):
    """The normal conversions :func:`load_audio` applies to a file.

    These are not problems: every read of the file does them the same way.
    Readers count them (one line per kind in a preparation report) instead
    of warning about each file.

    Arguments
    ---------
    audio : AudioFormat or AudioInfo
        The file's description (anything with ``sample_rate`` and
        ``channels``).
    sample_rate : int
        The rate the file is read at.

    Returns
    -------
    list of str
        ``"mixed down from <n> channels"`` when the file has more than one
        channel, then ``"resampled from <rate> Hz"`` when its rate differs
        from ``sample_rate``; empty when the file is read as it is.

    Example
    -------
    >>> reading_conversions(AudioFormat(22050, 2, 100))
    ['mixed down from 2 channels', 'resampled from 22050 Hz']
    >>> reading_conversions(AudioFormat(16000, 1, 100))
    []
    """
    conversions = []
    if audio.channels > 1:
        conversions.append(f"mixed down from {audio.channels} channels")
    if audio.sample_rate != sample_rate:
        conversions.append(f"resampled from {audio.sample_rate} Hz")
    return conversions


def truncation_warning(path, frames):
    """Say whether a WAV file holds fewer samples than its header promises.

    soundfile (libsndfile) reads such a file as far as it goes and counts
    only what is there, so the header's own count is read here: the size
    of the RIFF ``data`` chunk. A size of ``0xFFFFFFFF`` (a WAV written as
    a stream) promises nothing; other formats are not checked.

    Arguments
    ---------
    path : str or os.PathLike
        The sound file.
    frames : int
        The samples per channel it holds (as soundfile reads them).

    Returns
    -------
    str or None
        ``"<path>: truncated: its header promises N samples, the file
        holds M"``, or None.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> path = getfixture("tmp_path") / "a.wav"
    >>> sf.write(path, np.zeros(1000), 16000, subtype="PCM_16")
    >>> with open(path, "r+b") as file:
    ...     _ = file.truncate(os.path.getsize(path) - 600)  # 300 samples
    >>> truncation_warning(path, sf.info(path).frames)
    '...a.wav: truncated: its header promises 1000 samples, the file holds 700'
    """
    promised = _wav_promised_frames(path)
    if promised is None or promised <= frames:
        return None
    return (
        f"{path}: truncated: its header promises {promised} samples, the "
        f"file holds {frames}"
    )


def _wav_promised_frames(path):
    """The samples per channel a RIFF/WAVE header promises, or None."""
    with open(path, "rb") as file:
        riff = file.read(12)
        if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            return None
        block_align = None
        while len(header := file.read(8)) == 8:
            chunk, size = header[:4], int.from_bytes(header[4:], "little")
            if chunk == b"data":
                if not block_align or size == _UNKNOWN_WAV_SIZE:
                    return None
                return size // block_align
            if chunk == b"fmt ":
                if size < 16:
                    return None
                block_align = int.from_bytes(file.read(16)[12:14], "little")
                size -= 16
            file.seek(size + size % 2, os.SEEK_CUR)  # chunks are even
    return None


def _warn_if_truncated(path, frames):
    """Warn, once per file, when ``path`` is a WAV cut short."""
    key = os.path.abspath(path)
    if key in _warned_truncated:
        return
    message = truncation_warning(path, frames)
    if message is not None:
        _warned_truncated.add(key)
        logger.warning("%s; using the samples there", message)


def inspect_audio(path):
    """Describe a sound file: format, length, level and clipping.

    Arguments
    ---------
    path : str or os.PathLike
        The sound file.

    Returns
    -------
    AudioInfo
        The file's description (an empty file has zero peak and rms).

    Raises
    ------
    AudioError
        When the file is missing or unreadable.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> path = getfixture("tmp_path") / "a.wav"
    >>> sf.write(path, np.full((4000, 2), 0.5), 8000)
    >>> info = inspect_audio(path)
    >>> info.channels, info.frames, info.duration, info.peak
    (2, 4000, 0.5, 0.5)
    """
    samples, sample_rate = _read(path)
    magnitude = np.abs(samples.astype(np.float64))
    frames, channels = samples.shape
    empty = magnitude.size == 0
    return AudioInfo(
        sample_rate=sample_rate,
        channels=channels,
        frames=frames,
        duration=frames / sample_rate,
        peak=0.0 if empty else float(magnitude.max()),
        rms=0.0 if empty else math.sqrt(float(np.mean(magnitude**2))),
        clipped_fraction=(
            0.0 if empty else float(np.mean(magnitude >= CLIPPING_LEVEL))
        ),
    )


def validate_audio(path, min_seconds=0.1):
    """Check that a sound file is usable for training and say what is odd.

    Fatal problems raise: an unreadable or corrupt file, no samples, fewer
    than ``min_seconds`` of audio, non-finite samples, all samples zero.
    Recoverable oddities are returned as warnings: more than
    ``CLIPPED_FRACTION_WARNING`` of samples clipped, a WAV cut short (see
    :func:`truncation_warning`). Several channels or a
    rate other than 16 kHz are not oddities (see
    :func:`reading_conversions`).

    Arguments
    ---------
    path : str or os.PathLike
        The sound file.
    min_seconds : float
        The shortest usable length in seconds.

    Returns
    -------
    info : AudioInfo
        The file's description.
    warnings : list of str
        One message per oddity, each naming the file.

    Raises
    ------
    AudioError
        For a fatal problem; the message names the file and the problem.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> path = getfixture("tmp_path") / "a.wav"
    >>> sf.write(path, np.full((8000, 2), 0.25), 8000)
    >>> info, warnings = validate_audio(path)
    >>> warnings, reading_conversions(info)
    ([], ['mixed down from 2 channels', 'resampled from 8000 Hz'])
    >>> sf.write(path, np.full(8000, 1.0), 16000)
    >>> validate_audio(path)[1]
    ['...: 100.00% of samples clipped']
    >>> sf.write(path, np.zeros(8000), 16000)
    >>> validate_audio(path)
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.audio.AudioError: ...: all samples are zero (silent)
    """
    info = inspect_audio(path)
    if info.frames == 0:
        raise AudioError(f"{path}: audio file has no samples (zero length)")
    if info.duration < min_seconds:
        raise AudioError(
            f"{path}: audio is too short ({info.duration:.3f} s, "
            f"at least {min_seconds} s needed)"
        )
    if not math.isfinite(info.rms):
        raise AudioError(f"{path}: audio holds NaN or infinite samples")
    if info.peak == 0.0:
        raise AudioError(f"{path}: all samples are zero (silent)")
    return info, _oddities(path, info)


def _oddities(path, info):
    """Warnings for a usable file that is clipped or cut short."""
    warnings = []
    if info.clipped_fraction > CLIPPED_FRACTION_WARNING:
        warnings.append(
            f"{path}: {100 * info.clipped_fraction:.2f}% of samples clipped"
        )
    truncated = truncation_warning(path, info.frames)
    if truncated is not None:
        warnings.append(truncated)
    return warnings
