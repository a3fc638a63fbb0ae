"""Tests for speechbrain_sercl.data.audio against numpy/analytic references."""

import logging
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from corpus_fixtures import tone, write_wav

from speechbrain_sercl.data.audio import (
    TARGET_SAMPLE_RATE,
    AudioError,
    AudioFormat,
    audio_format,
    inspect_audio,
    load_audio,
    read_windows,
    reading_conversions,
    truncation_warning,
    validate_audio,
)


@pytest.mark.parametrize("sample_rate", [8000, 22050, 44100, 48000])
def test_load_audio_resamples_to_16k(tmp_path, sample_rate):
    path = write_wav(
        tmp_path / "a.wav",
        sample_rate=sample_rate,
        samples=tone(0.5, sample_rate, frequency=440.0, amplitude=0.5),
    )
    waveform = load_audio(path)
    # The same tone sampled directly at 16 kHz, away from the edges where
    # the resampling filter sees the signal's boundaries.
    expected = tone(0.5, TARGET_SAMPLE_RATE, frequency=440.0, amplitude=0.5)
    assert waveform.dtype == torch.float32
    assert waveform.shape == (8000,)
    np.testing.assert_allclose(
        waveform.numpy()[400:-400], expected[400:-400], atol=5e-3
    )
    assert audio_format(path).duration == pytest.approx(0.5)


def test_load_audio_keeps_16k_samples_exactly(tmp_path):
    samples = np.random.default_rng(0).uniform(-0.5, 0.5, 4000)
    path = write_wav(tmp_path / "a.wav", samples=samples)
    np.testing.assert_array_equal(
        load_audio(path).numpy(), samples.astype(np.float32)
    )


def test_load_audio_mixes_channels_to_their_mean(tmp_path):
    rng = np.random.default_rng(1)
    samples = rng.uniform(-0.5, 0.5, (4000, 3))
    path = write_wav(tmp_path / "a.wav", samples=samples)
    expected = samples.astype(np.float32).astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(load_audio(path).numpy(), expected, atol=1e-7)


def _ramp_file(tmp_path, samples=16000):
    """A file whose sample n is n / samples, so a crop shows its start."""
    ramp = np.arange(samples) / samples
    return write_wav(tmp_path / "ramp.wav", samples=ramp), ramp


def test_crop_is_a_seeded_window_of_the_signal(tmp_path):
    path, ramp = _ramp_file(tmp_path)
    starts = set()
    for seed in range(20):
        generator = torch.Generator().manual_seed(seed)
        crop = load_audio(path, crop_seconds=0.25, generator=generator)
        start = int(np.argmin(np.abs(ramp - float(crop[0]))))
        np.testing.assert_array_equal(
            crop.numpy(), ramp[start : start + 4000].astype(np.float32)
        )
        same_seed = torch.Generator().manual_seed(seed)
        again = load_audio(path, crop_seconds=0.25, generator=same_seed)
        assert torch.equal(crop, again)
        starts.add(start)
    assert len(starts) > 10
    assert all(0 <= start <= 12000 for start in starts)


def test_crop_longer_than_signal_keeps_it_whole(tmp_path):
    path, ramp = _ramp_file(tmp_path, samples=3000)
    np.testing.assert_array_equal(
        load_audio(path, crop_seconds=1.0).numpy(), ramp.astype(np.float32)
    )


def test_max_seconds_truncates_after_the_crop(tmp_path):
    path, ramp = _ramp_file(tmp_path)
    assert torch.equal(
        load_audio(path, max_seconds=0.1), torch.from_numpy(ramp[:1600]).float()
    )
    generator = torch.Generator().manual_seed(3)
    both = load_audio(
        path, crop_seconds=0.5, max_seconds=0.25, generator=generator
    )
    start = int(np.argmin(np.abs(ramp - float(both[0]))))
    np.testing.assert_array_equal(
        both.numpy(), ramp[start : start + 4000].astype(np.float32)
    )


@pytest.mark.parametrize(
    "argument", ["sample_rate", "max_seconds", "crop_seconds"]
)
def test_load_audio_rejects_non_positive_arguments(tmp_path, argument):
    path = write_wav(tmp_path / "a.wav")
    with pytest.raises(ValueError, match=argument):
        load_audio(path, **{argument: 0})


def test_corrupt_and_missing_files_raise_audio_error(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x01not really a wav" * 10)
    for function in (load_audio, inspect_audio, validate_audio, audio_format):
        with pytest.raises(AudioError, match="garbage.wav: unreadable audio"):
            function(garbage)
        with pytest.raises(AudioError, match="absent.wav: .*does not exist"):
            function(tmp_path / "absent.wav")
    assert issubclass(AudioError, ValueError)


def test_zero_length_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1)), 16000)
    info = inspect_audio(path)
    assert (info.frames, info.duration, info.peak, info.rms) == (0, 0, 0, 0)
    with pytest.raises(AudioError, match="empty.wav: .*zero length"):
        validate_audio(path)
    with pytest.raises(AudioError, match="empty.wav: .*no samples"):
        load_audio(path)


@pytest.mark.parametrize(
    ("samples", "problem"),
    [
        (np.zeros(8000), "all samples are zero"),
        (np.full(800, 0.1), "too short"),
        (np.concatenate([np.full(7999, 0.1), [np.nan]]), "NaN or infinite"),
    ],
)
def test_validate_rejects_unusable_audio(tmp_path, samples, problem):
    path = write_wav(tmp_path / "bad.wav", samples=samples)
    with pytest.raises(AudioError, match=f"bad.wav: .*{problem}"):
        validate_audio(path)


def test_inspect_matches_numpy_statistics(tmp_path):
    rng = np.random.default_rng(2)
    samples = rng.uniform(-0.5, 0.5, (8000, 2))
    samples[:100, 0] = 1.0
    samples[100:130, 1] = -1.0
    path = write_wav(tmp_path / "a.wav", samples=samples, sample_rate=8000)
    stored = samples.astype(np.float32).astype(np.float64)
    info = inspect_audio(path)
    assert (info.sample_rate, info.channels, info.frames) == (8000, 2, 8000)
    assert info.duration == 1.0
    assert info.peak == 1.0
    assert info.rms == pytest.approx(np.sqrt(np.mean(stored**2)), rel=1e-12)
    assert info.clipped_fraction == pytest.approx(130 / 16000)


def test_validate_warns_about_clipping_not_about_conversions(tmp_path):
    clean = write_wav(tmp_path / "clean.wav")
    assert validate_audio(clean)[1] == []
    assert reading_conversions(validate_audio(clean)[0]) == []

    stereo = write_wav(tmp_path / "stereo.wav", channels=2)
    info, warnings = validate_audio(stereo)
    assert warnings == []
    assert reading_conversions(info) == ["mixed down from 2 channels"]

    both = write_wav(tmp_path / "both.wav", sample_rate=44100, channels=3)
    info, warnings = validate_audio(both)
    assert warnings == []
    assert reading_conversions(info) == [
        "mixed down from 3 channels",
        "resampled from 44100 Hz",
    ]
    assert reading_conversions(info, sample_rate=44100) == [
        "mixed down from 3 channels"
    ]

    samples = tone(0.5, 16000, amplitude=2.0).clip(-1.0, 1.0)
    clipped = write_wav(tmp_path / "clipped.wav", samples=samples)
    info, (warning,) = validate_audio(clipped)
    assert "clipped.wav" in warning and "clipped" in warning
    assert info.clipped_fraction == pytest.approx(
        np.mean(np.abs(samples) >= 0.999)
    )


def test_audio_format_reads_the_header(tmp_path):
    path = write_wav(tmp_path / "a.wav", sample_rate=22050, channels=2)
    header = audio_format(path)
    assert header == AudioFormat(22050, 2, round(0.25 * 22050))
    assert header.duration == round(0.25 * 22050) / 22050
    assert reading_conversions(header) == reading_conversions(
        inspect_audio(path)
    )


@pytest.mark.parametrize(
    "seconds, window, hop, starts",
    [
        (1.0, 0.25, 0.25, [0.0, 0.25, 0.5, 0.75]),
        (1.1, 0.5, 0.25, [0.0, 0.25, 0.5, 0.75]),  # the last is 0.35 s
        (0.3, 0.5, 0.25, [0.0]),  # shorter than a window
        (1.0, 0.5, 0.5, [0.0, 0.5]),
    ],
)
def test_read_windows_cuts_the_file_as_listed(
    tmp_path, seconds, window, hop, starts
):
    rng = np.random.default_rng(2)
    samples = rng.uniform(-0.5, 0.5, (round(seconds * 8000), 2))
    path = tmp_path / "a.wav"
    sf.write(path, samples, 8000, subtype="FLOAT")
    windows = list(read_windows(path, window, hop))
    assert [start for start, _, _ in windows] == starts
    for start, end, waveform in windows:
        assert end == min(start + window, seconds)
        # The same samples cut into a file of their own and loaded.
        cut = samples[round(start * 8000) : round(end * 8000)]
        sf.write(tmp_path / "cut.wav", cut, 8000, subtype="FLOAT")
        expected = load_audio(tmp_path / "cut.wav")
        torch.testing.assert_close(waveform, expected, rtol=0, atol=1e-6)


def test_read_windows_refuses_gaps_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="must not exceed"):
        next(read_windows(tmp_path / "a.wav", 1.0, 2.0))
    with pytest.raises(AudioError, match="does not exist"):
        next(read_windows(tmp_path / "a.wav", 1.0, 0.5))
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(AudioError, match="unreadable audio"):
        next(read_windows(tmp_path / "bad.wav", 1.0, 0.5))


def cut_short(path, frames=16000, kept=11000):
    """A 16-bit mono WAV of ``frames`` samples, cut on disk after ``kept``
    (as a copy cut short leaves it); its samples read before the cut."""
    sf.write(path, tone(frames / 16000, 16000), 16000, subtype="PCM_16")
    intact, _ = sf.read(path, dtype="float32")
    header = os.path.getsize(path) - 2 * frames
    with open(path, "r+b") as file:
        file.truncate(header + 2 * kept)
    return intact


def truncated(path, promised=16000, holds=11000):
    return (
        f"{path}: truncated: its header promises {promised} samples, the "
        f"file holds {holds}"
    )


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_a_wav_cut_short_is_read_with_one_warning_naming_it(tmp_path, caplog):
    path = tmp_path / "cut.wav"
    intact = cut_short(path)
    with caplog.at_level(logging.WARNING):
        first = load_audio(path)
        again = load_audio(path)

    np.testing.assert_array_equal(first.numpy(), intact[:11000])
    assert torch.equal(again, first)
    assert warnings_of(caplog) == [
        f"{truncated(path)}; using the samples there"
    ]


def test_a_wav_cut_short_read_in_windows_warns_once(tmp_path, caplog):
    path = tmp_path / "cut.wav"
    intact = cut_short(path)
    with caplog.at_level(logging.WARNING):
        windows = list(read_windows(path, 0.5, 0.5))
        list(read_windows(path, 0.5, 0.5))

    assert [(start, end) for start, end, _ in windows] == [
        (0.0, 0.5),
        (0.5, 11000 / 16000),
    ]
    read = np.concatenate([waveform.numpy() for _, _, waveform in windows])
    np.testing.assert_array_equal(read, intact[:11000])
    assert warnings_of(caplog) == [
        f"{truncated(path)}; using the samples there"
    ]


def test_validation_lists_a_wav_cut_short(tmp_path):
    path = tmp_path / "cut.wav"
    cut_short(path)
    info, warnings = validate_audio(path)
    assert info.frames == 11000
    assert warnings == [truncated(path)]


def test_a_streamed_wav_promises_nothing(tmp_path):
    """A WAV written as a stream does not know its length: the data size
    of its header is 0xFFFFFFFF."""
    path = tmp_path / "stream.wav"
    sf.write(path, tone(0.5, 16000), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    assert sf.info(path).frames == 8000
    assert truncation_warning(path, 8000) is None
    assert validate_audio(path)[1] == []


def test_a_whole_wav_or_another_format_is_not_truncated(tmp_path):
    whole = tmp_path / "whole.wav"
    sf.write(whole, tone(0.5, 16000), 16000)
    assert truncation_warning(whole, sf.info(whole).frames) is None
    flac = tmp_path / "a.flac"
    sf.write(flac, tone(0.5, 16000), 16000)
    assert truncation_warning(flac, 10) is None
