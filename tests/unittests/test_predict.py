"""Tests for ``sercl predict`` (predict.py, predict_io.py, the CLI).

Most tests use :class:`LevelClassifier`, a fake with ``EncoderClassifier``'s
interface whose class is decided by the RMS level of the valid samples, so
that every prediction is checked against :func:`expected_probabilities`,
the same rule computed here from the file's samples with numpy. One test
loads a real (tiny, random) ``EncoderClassifier`` folder.
"""

import csv
import json
import logging
import math
import os
import subprocess
import sys
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from export_fixtures import write_tiny_export
from speechbrain.dataio.encoder import CategoricalEncoder

from speechbrain_sercl import cli
from speechbrain_sercl.cli import main
from speechbrain_sercl.inference.predict import (
    class_names,
    load_classifier,
    predict_files,
)
from speechbrain_sercl.inference.predict_io import (
    chunks_path,
    collect_audio_files,
    write_predictions,
)

RATE = 16000
CLASSES = ["sad", "neutral", "angry"]
# The RMS level each class is centred on (natural-log distance).
LEVELS = (0.02, 0.1, 0.4)
PROBABILITY_COLUMNS = [f"p_{name}" for name in CLASSES]
FILE_COLUMNS = ["file", "emotion", "score", *PROBABILITY_COLUMNS]
FILE_COLUMNS += ["status", "error"]
CHUNK_COLUMNS = ["file", "start", "end", "emotion", "score"]
CHUNK_COLUMNS += PROBABILITY_COLUMNS


class LevelClassifier(torch.nn.Module):
    """A deterministic stand-in for ``EncoderClassifier``.

    ``classify_batch`` takes the valid samples of each row (from the
    relative lengths), computes their RMS level and scores each class by
    minus the squared distance of ``log(rms)`` to ``log(LEVELS[class])``.
    It records the shape of every batch it gets; it fails on an input
    shorter than ``min_samples``, as a model with a long kernel does.
    """

    def __init__(self, min_samples=1):
        super().__init__()
        encoder = CategoricalEncoder()
        encoder.update_from_iterable(CLASSES)
        encoder.ignore_len()
        self.hparams = SimpleNamespace(label_encoder=encoder)
        self.min_samples = min_samples
        self.batches = []

    def classify_batch(self, wavs, wav_lens):
        valid = torch.round(wav_lens * wavs.shape[1]).long()
        self.batches.append((tuple(wavs.shape), valid.tolist()))
        if int(valid.min()) < self.min_samples:
            raise RuntimeError("input shorter than the kernel")
        mask = torch.arange(wavs.shape[1])[None, :] < valid[:, None]
        power = (wavs.double() ** 2 * mask).sum(dim=1) / valid
        log_rms = 0.5 * torch.log(power + 1e-12)
        centres = torch.log(torch.tensor(LEVELS, dtype=torch.float64))
        logits = -((log_rms[:, None] - centres[None, :]) ** 2)
        log_probabilities = logits.log_softmax(dim=-1).float()
        score, index = log_probabilities.max(dim=-1)
        labels = [CLASSES[i] for i in index.tolist()]
        return log_probabilities, score, index, labels


def expected_probabilities(samples):
    """The fake's probabilities for samples, computed with numpy."""
    samples = np.asarray(samples, dtype=np.float64)
    log_rms = 0.5 * np.log(np.mean(samples**2) + 1e-12)
    logits = -((log_rms - np.log(LEVELS)) ** 2)
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def noise(seconds, level, seed, rate=RATE, channels=None):
    """Uniform noise with RMS ``level``."""
    shape = (round(seconds * rate),) + ((channels,) if channels else ())
    amplitude = level * math.sqrt(3)
    return np.random.default_rng(seed).uniform(-amplitude, amplitude, shape)


def write(path, samples, rate=RATE):
    """Write a file (WAV as 32-bit float; the references read it back)."""
    subtype = "FLOAT" if str(path).endswith(".wav") else None
    sf.write(path, samples, rate, subtype=subtype)
    return str(path)


def file_samples(path):
    """A file's samples as predict reads them (float32, mono)."""
    samples, _ = sf.read(path, dtype="float32", always_2d=True)
    return samples.mean(axis=1, dtype=np.float32)


def test_sorted_batches_give_each_file_its_result_alone(tmp_path):
    seconds = [0.7, 0.2, 1.9, 1.1, 0.45, 1.6, 0.9]
    files = [
        write(tmp_path / f"{index}.wav", noise(s, LEVELS[index % 3], index))
        for index, s in enumerate(seconds)
    ]
    classifier = LevelClassifier()
    batched = predict_files(classifier, files, batch_size=3)
    # Longest first, three at a time: each batch is a run of the sorted
    # lengths, so padding is as small as it can be.
    lengths = [round(s * RATE) for s in seconds]
    assert [valid for _, valid in classifier.batches] == [
        sorted(lengths, reverse=True)[i : i + 3] for i in (0, 3, 6)
    ]
    assert [shape for shape, _ in classifier.batches] == [
        (len(valid), max(valid)) for _, valid in classifier.batches
    ]
    assert [p.file for p in batched] == files  # rows in input order
    for file, prediction in zip(files, batched, strict=True):
        alone = predict_files(LevelClassifier(), [file], batch_size=1)[0]
        assert prediction.error is None and prediction.chunks is None
        np.testing.assert_allclose(
            prediction.probabilities, alone.probabilities, rtol=1e-12
        )
        np.testing.assert_allclose(
            prediction.probabilities,
            expected_probabilities(file_samples(file)),
            rtol=1e-5,
        )


def test_audio_is_mixed_down_and_resampled_to_the_model_rate(tmp_path):
    stereo = noise(0.5, 0.1, seed=1, rate=22050, channels=2)
    path = write(tmp_path / "stereo.flac", stereo, rate=22050)
    mono = torch.from_numpy(file_samples(path))
    reference = torchaudio.functional.resample(mono, 22050, RATE)
    prediction = predict_files(LevelClassifier(), [path])[0]
    np.testing.assert_allclose(
        prediction.probabilities,
        expected_probabilities(reference.numpy()),
        rtol=1e-5,
    )


@pytest.fixture
def mixed_folder(tmp_path):
    """Two short files and one long (3.2 s) file, in a folder."""
    folder = tmp_path / "audio"
    (folder / "sub").mkdir(parents=True)
    write(folder / "a.wav", noise(0.5, 0.4, seed=1))
    write(folder / "sub" / "b.flac", noise(0.8, 0.02, seed=2))
    long = [noise(1.0, level, seed=3 + i) for i, level in enumerate(LEVELS)]
    write(folder / "long.wav", np.concatenate([*long, noise(0.2, 0.1, 9)]))
    return folder


# Options under which long.wav (3.2 s) is read in windows of 1 s every
# 0.5 s: starts 0, 0.5, ..., 2.5 (the window at 2.5 reaches the end, the
# one at 2.0 ends at 3.0).
WINDOWED = {"max_seconds": 2.0, "window_seconds": 1.0, "hop_seconds": 0.5}
LONG_STARTS = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]


def test_csv_and_json_outputs_hold_the_predictions(mixed_folder, tmp_path):
    files = collect_audio_files([mixed_folder])
    assert [f.split("audio/")[1] for f in files] == [
        "a.wav",
        "long.wav",
        "sub/b.flac",
    ]
    predictions = predict_files(LevelClassifier(), files, **WINDOWED)
    csv_path, json_path = tmp_path / "p.csv", tmp_path / "p.json"
    assert write_predictions(predictions, CLASSES, csv_path) == [
        csv_path,
        tmp_path / "p_chunks.csv",
    ]
    assert write_predictions(predictions, CLASSES, json_path) == [json_path]
    with open(csv_path, newline="") as stream:
        reader = csv.DictReader(stream)
        assert reader.fieldnames == FILE_COLUMNS
        csv_rows = list(reader)
    json_rows = json.loads(json_path.read_text())
    long = files[1]
    samples = {file: file_samples(file) for file in files}
    for file, csv_row, json_row in zip(files, csv_rows, json_rows, strict=1):
        if file == long:
            chunks = [
                expected_probabilities(samples[file][i : i + RATE])
                for i in (round(s * RATE) for s in LONG_STARTS)
            ]
            expected = np.mean(chunks, axis=0)
        else:
            expected = expected_probabilities(samples[file])
        assert list(json_row) == FILE_COLUMNS + (
            ["chunks"] if file == long else []
        )
        for row in (csv_row, json_row):
            assert row["file"] == file and row["status"] == "ok"
            assert row["error"] in ("", None)
            assert row["emotion"] == CLASSES[int(np.argmax(expected))]
            assert float(row["score"]) == pytest.approx(expected.max())
            probabilities = [float(row[c]) for c in PROBABILITY_COLUMNS]
            np.testing.assert_allclose(probabilities, expected, rtol=1e-5)
    # The long file's timeline: in the JSON row, and in p_chunks.csv.
    with open(chunks_path(csv_path), newline="") as stream:
        reader = csv.DictReader(stream)
        assert reader.fieldnames == CHUNK_COLUMNS
        chunk_rows = list(reader)
    assert [row["file"] for row in chunk_rows] == [long] * 6
    json_chunks = json_rows[1]["chunks"]
    assert list(json_chunks[0]) == CHUNK_COLUMNS[1:]
    for start, csv_chunk, json_chunk, probabilities in zip(
        LONG_STARTS, chunk_rows, json_chunks, chunks, strict=True
    ):
        end = min(start + 1.0, 3.2)
        for row in (csv_chunk, json_chunk):
            assert float(row["start"]) == pytest.approx(start)
            assert float(row["end"]) == pytest.approx(end)
            assert row["emotion"] == CLASSES[int(np.argmax(probabilities))]
            found = [float(row[c]) for c in PROBABILITY_COLUMNS]
            np.testing.assert_allclose(found, probabilities, rtol=1e-5)
    # The level changes every second: a window within one second has its
    # class.
    assert [row["emotion"] for row in chunk_rows][::2] == CLASSES


def test_bad_files_are_reported_and_skipped(tmp_path, caplog):
    good = [
        write(tmp_path / f"good{i}.wav", noise(0.3 + 0.1 * i, LEVELS[i], i))
        for i in range(3)
    ]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage" * 3)
    empty = write(tmp_path / "empty.wav", np.zeros(0))
    zero_bytes = tmp_path / "zero.flac"
    zero_bytes.write_bytes(b"")
    missing = str(tmp_path / "missing.wav")
    not_finite = write(tmp_path / "nan.wav", np.full(800, np.nan))
    files = [good[0], str(corrupt), empty, good[1], str(zero_bytes)]
    files += [missing, not_finite, good[2]]
    with caplog.at_level(logging.WARNING, logger="speechbrain_sercl"):
        predictions = predict_files(LevelClassifier(), files, batch_size=4)
    reasons = {
        str(corrupt): "unreadable audio",
        empty: "has no samples",
        str(zero_bytes): "unreadable audio",
        missing: "does not exist",
        not_finite: "the classifier failed (ValueError: probabilities not",
    }
    for prediction in predictions:
        if prediction.file in reasons:
            assert prediction.probabilities is None
            assert prediction.error.startswith(prediction.file)
            assert reasons[prediction.file] in prediction.error
        else:
            np.testing.assert_allclose(
                prediction.probabilities,
                expected_probabilities(file_samples(prediction.file)),
                rtol=1e-5,
            )
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 5
    assert all(any(f in w for w in warnings) for f in reasons)
    path = tmp_path / "out.csv"
    write_predictions(predictions, CLASSES, path)
    with open(path, newline="") as stream:
        rows = {row["file"]: row for row in csv.DictReader(stream)}
    assert [rows[f]["status"] for f in files] == [
        "error" if f in reasons else "ok" for f in files
    ]
    assert rows[missing]["emotion"] == rows[missing]["p_sad"] == ""


def test_a_file_the_model_fails_on_fails_alone(tmp_path):
    files = [
        write(tmp_path / "a.wav", noise(0.5, 0.1, 1)),
        write(tmp_path / "tiny.wav", noise(0.01, 0.1, 2)),  # 160 samples
        write(tmp_path / "b.wav", noise(0.3, 0.4, 3)),
    ]
    classifier = LevelClassifier(min_samples=1000)
    predictions = predict_files(classifier, files, batch_size=8)
    assert "tiny.wav: the classifier failed (RuntimeError: input shorter" in (
        predictions[1].error
    )
    for prediction in (predictions[0], predictions[2]):
        np.testing.assert_allclose(
            prediction.probabilities,
            expected_probabilities(file_samples(prediction.file)),
            rtol=1e-5,
        )
    # The batch of three failed, then each file was classified alone.
    assert [len(valid) for _, valid in classifier.batches] == [3, 1, 1, 1]


def expected_window_starts(frames, window, hop):
    """Window starts, by enumeration: a window starts every hop until one
    has reached the end of the file."""
    starts = [0]
    while starts[-1] + window < frames:
        starts.append(starts[-1] + hop)
    return starts


def test_long_file_memory_does_not_grow_with_its_length(tmp_path):
    """Peak traced memory for a 10-minute file as for a 30-second one.

    tracemalloc traces Python's allocations, numpy arrays included: the
    samples soundfile reads, their mono mix and the padded batch are all
    numpy arrays here (16 kHz files, so nothing is resampled by torch). A
    reader that loaded the file whole (38 MB of float32 for 10 minutes)
    or kept every window would show in the peak. What torch allocates
    inside the classifier is not traced: the fake records its batch
    shapes instead, which stay at ``batch_size`` windows.
    """
    minutes = 10
    level_seconds = 50  # the level changes every 50 s
    levels = np.resize(LEVELS, minutes * 60 // level_seconds)
    long = np.concatenate(
        [noise(level_seconds, level, i) for i, level in enumerate(levels)]
    )
    long_path = tmp_path / "long.wav"
    sf.write(long_path, long, RATE, subtype="PCM_16")
    del long
    short_path = tmp_path / "short.wav"
    sf.write(short_path, noise(30, 0.1, 99), RATE, subtype="PCM_16")
    options = {"batch_size": 4, "max_seconds": 20.0}
    options.update(window_seconds=10.0, hop_seconds=5.0)

    def peak(path):
        classifier = LevelClassifier()
        tracemalloc.start()
        try:
            prediction = predict_files(classifier, [str(path)], **options)[0]
            return tracemalloc.get_traced_memory()[1], prediction, classifier
        finally:
            tracemalloc.stop()

    peak(short_path)  # first calls allocate caches: not counted
    short_peak, short, _ = peak(short_path)
    long_peak, prediction, classifier = peak(long_path)
    whole_file_bytes = minutes * 60 * RATE * 4
    print(
        f"peak traced memory: 30 s {short_peak / 2**20:.2f} MiB, "
        f"{minutes} min {long_peak / 2**20:.2f} MiB "
        f"(the whole file as float32: {whole_file_bytes / 2**20:.1f} MiB)"
    )
    # Margin: the timeline rows (119 instead of 5, under 1 kB each).
    assert long_peak <= 1.1 * short_peak + 256 * 1024
    assert long_peak < whole_file_bytes / 4
    assert max(shape[0] * shape[1] for shape, _ in classifier.batches) <= (
        4 * 10 * RATE
    )
    assert len(short.chunks) == 5
    # The timeline: windows of 10 s every 5 s, the last reaching the end.
    starts = expected_window_starts(minutes * 60 * RATE, 10 * RATE, 5 * RATE)
    assert len(starts) == 119
    assert [chunk.start for chunk in prediction.chunks] == [
        s / RATE for s in starts
    ]
    assert prediction.chunks[-1].end == minutes * 60
    samples = file_samples(long_path)
    for chunk in prediction.chunks[::7]:
        window = samples[round(chunk.start * RATE) : round(chunk.end * RATE)]
        np.testing.assert_allclose(
            chunk.probabilities, expected_probabilities(window), rtol=1e-5
        )
    # A window within one level has that level's class.
    for chunk in prediction.chunks:
        first = int(chunk.start // level_seconds)
        if int((chunk.end - 1e-9) // level_seconds) == first:
            top = int(np.argmax(chunk.probabilities))
            assert LEVELS[top] == levels[first]
    mean = np.mean([chunk.probabilities for chunk in prediction.chunks], 0)
    np.testing.assert_allclose(prediction.probabilities, mean, rtol=1e-12)


# A tiny EncoderClassifier folder as `sercl export` lays them out: modules
# in hyperparams.yaml, weights and the label encoder fetched by the
# pretrainer as <name>.ckpt from the same source.
def test_a_real_encoder_classifier_folder_loads_and_predicts(
    mixed_folder, tmp_path
):
    model = write_tiny_export(tmp_path / "model", CLASSES, tmp_path / "ssl")
    classifier = load_classifier(model, savedir=tmp_path / "savedir")
    assert class_names(classifier) == CLASSES
    files = collect_audio_files([mixed_folder])
    predictions = predict_files(classifier, files, **WINDOWED)
    for prediction in predictions:
        assert prediction.error is None
        assert sum(prediction.probabilities) == pytest.approx(1.0)
    assert [len(p.chunks or []) for p in predictions] == [0, 6, 0]
    # A file predicted alone is the classifier's answer on its waveform; in
    # a batch, nearly that (the real Fbank's last frames see the padding).
    waveform = torch.from_numpy(file_samples(files[0]))[None]
    log_probabilities = classifier.classify_batch(waveform, torch.ones(1))[0]
    reference = log_probabilities.double().softmax(dim=-1)[0]
    alone = predict_files(classifier, files[:1])[0].probabilities
    np.testing.assert_allclose(alone, reference, rtol=1e-6)
    np.testing.assert_allclose(predictions[0].probabilities, alone, atol=1e-4)


@pytest.fixture
def fake_model(monkeypatch):
    """``sercl predict`` with the fake classifier instead of a folder."""
    loaded = []

    def load(model, **options):
        loaded.append((model, options))
        return LevelClassifier()

    monkeypatch.setattr(cli, "load_classifier", load)
    return loaded


def test_cli_writes_csv_with_timelines_and_json(
    mixed_folder, tmp_path, fake_model, capsys
):
    listed = tmp_path / "list.csv"
    listed.write_text("path,notes\naudio/a.wav,x\naudio/missing.wav,y\n")
    output = tmp_path / "new folder" / "p.csv"  # created
    options = ["--max-seconds", "2", "--window", "1", "--hop=0.5"]
    argv = ["predict", str(mixed_folder), str(listed), "--model", "m"]
    assert main([*argv, "--output", str(output), *options]) == 0
    assert fake_model == [
        ("m", {"savedir": None, "trust_remote_config": False, "run_opts": None})
    ]
    err = capsys.readouterr().err
    assert "Predicted 3 files, skipped 1." in err
    assert f"Wrote {output.parent / 'p_chunks.csv'}" in err
    with open(output, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["file"].split("audio/")[1] for row in rows] == [
        "a.wav",
        "long.wav",
        "sub/b.flac",
        "missing.wav",
    ]
    assert [row["status"] for row in rows] == ["ok"] * 3 + ["error"]
    with open(chunks_path(output), newline="") as stream:
        assert len(list(csv.DictReader(stream))) == len(LONG_STARTS)
    json_output = tmp_path / "p.json"
    argv += ["--output", str(json_output), "--trust-remote-config"]
    assert main([*argv, "--savedir", "s", "--device=cpu", *options]) == 0
    assert fake_model[-1][1] == {
        "savedir": "s",
        "trust_remote_config": True,
        "run_opts": {"device": "cpu"},
    }
    rows = json.loads(json_output.read_text())
    assert [len(row.get("chunks", [])) for row in rows] == [0, 6, 0, 0]


def test_cli_writes_csv_to_stdout_and_refuses_bad_options(
    mixed_folder, fake_model, capsys
):
    argv = ["predict", str(mixed_folder / "a.wav"), "--model", "m"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ",".join(FILE_COLUMNS)
    assert len(out.splitlines()) == 2
    for bad, message in [
        (["--output", "p.txt"], "must end in .csv or .json"),
        (["--hop", "20"], "must not exceed the window"),
        (["--batch-size", "0"], "batch_size must be a positive integer"),
    ]:
        assert main([*argv, *bad]) == 1
        assert message in capsys.readouterr().err
    assert main(["predict", "missing.wav", "--model", "m"]) == 1
    with pytest.raises(SystemExit):
        main([*argv, "--no_such=1"])  # no overrides for predict


def test_other_subcommands_options_are_overrides_for_folds():
    """``--model=...`` is an option of predict, an override for folds."""
    parser = cli.build_parser()
    argv = ["folds", "demo", "--runs", "0", "--model=/my models/x"]
    assert cli._set_aside_overrides(parser, argv) == (
        argv[:4],
        ["--model=/my models/x"],
    )
    argv = ["predict", "a.wav", "--model=/my models/x", "--ssl=1"]
    assert cli._set_aside_overrides(parser, argv) == (argv[:3], ["--ssl=1"])


@pytest.mark.parametrize("windowed", [False, True])
def test_a_wav_cut_short_is_predicted_with_one_warning_naming_it(
    tmp_path, fake_model, caplog, windowed
):
    """The header promises 1.5 s, the file holds 0.9 s: the prediction is
    that of the 0.9 s there, with one warning naming the file."""
    path = tmp_path / "cut.wav"
    sf.write(path, noise(1.5, LEVELS[1], 5), RATE, subtype="PCM_16")
    there = file_samples(path)[: round(0.9 * RATE)]
    header = path.stat().st_size - 2 * round(1.5 * RATE)
    with open(path, "r+b") as file:
        file.truncate(header + 2 * len(there))
    output = tmp_path / "p.json"
    argv = ["predict", str(path), "--model", "m", "--output", str(output)]
    if windowed:  # one window of the whole file
        argv += ["--max-seconds", "0.5", "--window", "2", "--hop", "1"]

    with caplog.at_level(logging.WARNING):
        assert main(argv) == 0

    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        f"{path}: truncated: its header promises {round(1.5 * RATE)} "
        f"samples, the file holds {len(there)}; using the samples there"
    ]
    (row,) = json.loads(output.read_text())
    probabilities = [float(row[column]) for column in PROBABILITY_COLUMNS]
    np.testing.assert_allclose(
        probabilities, expected_probabilities(there), rtol=1e-5
    )


def test_predict_prints_what_concerns_the_user_and_nothing_else(tmp_path):
    """A fresh ``sercl predict`` process (the libraries warn once per
    process): standard error holds the bad file and the summary, none of
    the libraries' notices, which ``--verbose`` shows."""
    model = write_tiny_export(tmp_path / "model", CLASSES, tmp_path / "ssl")
    good = write(tmp_path / "a.wav", noise(1.0, LEVELS[1], 0))
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    output = tmp_path / "p.csv"
    argv = [sys.executable, "-m", "speechbrain_sercl.cli", "predict"]
    argv += ["--model", str(model), good, str(junk), "--output", str(output)]
    environment = {**os.environ, "PYTHONWARNINGS": "default"}

    def standard_error(*options):
        done = subprocess.run(
            [*argv, *options], capture_output=True, text=True, env=environment
        )
        assert done.returncode == 0, done.stderr
        return done.stderr.splitlines()

    assert standard_error() == [
        f"Skipping {junk}: unreadable audio (Format not recognised.)",
        "Predicted 1 files, skipped 1.",
        f"Wrote {output}",
    ]
    verbose = standard_error("--verbose")
    assert any("Warning" in line for line in verbose)
    assert verbose[-2:] == ["Predicted 1 files, skipped 1.", f"Wrote {output}"]
