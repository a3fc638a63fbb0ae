"""The classical floor: MFCC statistics + logistic regression per run."""

import csv
import json

import numpy as np
import pytest
import soundfile
import torch
import torchaudio
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from speechbrain_sercl.data.folds import FoldSplit
from speechbrain_sercl.protocol.classical import (
    mfcc_statistics,
    run_classical,
    utterance_features,
)


def test_statistics_are_mean_and_std_over_frames_in_float64():
    generator = torch.Generator().manual_seed(0)
    waveform = torch.randn(24000, generator=generator) * 0.1
    mfcc = torchaudio.transforms.MFCC(
        sample_rate=16000,
        n_mfcc=40,
        melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 64},
    )(waveform).double()
    frames = mfcc.numpy().T  # [frames, 40]
    expected = np.concatenate(
        [frames.mean(axis=0), np.sqrt(((frames - frames.mean(0)) ** 2).mean(0))]
    )
    got = mfcc_statistics(waveform).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def write_tones(folder, frequencies, per_class, speakers=("s1", "s2")):
    """A corpus whose classes are tones of different pitch (separable)."""
    manifest = {}
    time = np.arange(8000) / 16000
    rng = np.random.default_rng(0)
    for emotion, frequency in frequencies.items():
        for speaker in speakers:
            for number in range(per_class):
                shift = 1 + 0.02 * number
                tone = 0.3 * np.sin(2 * np.pi * frequency * shift * time)
                tone += 0.01 * rng.standard_normal(time.size)
                utt = f"{speaker}_{emotion}_{number}"
                path = folder / f"{utt}.wav"
                soundfile.write(path, tone, 16000)
                manifest[utt] = {
                    "wav": str(path),
                    "emotion": emotion,
                    "speaker": speaker,
                    "corpus": "tones",
                }
    return manifest


@pytest.fixture
def tones(tmp_path):
    frequencies = {"angry": 880.0, "happy": 440.0, "sad": 110.0}
    manifest = write_tones(tmp_path, frequencies, per_class=4)
    test = sorted(utt for utt in manifest if utt.startswith("s2_"))
    train = sorted(set(manifest) - set(test))
    return manifest, FoldSplit(manifest, {"tones": train}, {"tones": test})


def test_floor_separates_tones_and_writes_each_test_utterance_once(
    tones, tmp_path
):
    manifest, split = tones
    output = tmp_path / "step"
    features = utterance_features(manifest, manifest, progress=False)
    metrics = run_classical(split, "tones", str(output), features)
    with open(output / "predictions.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert sorted(row["id"] for row in rows) == split.test("tones")
    assert list(rows[0])[5:] == ["p_angry", "p_happy", "p_sad"]
    for row in rows:
        probabilities = [
            float(row[f"p_{c}"]) for c in ("angry", "happy", "sad")
        ]
        assert sum(probabilities) == pytest.approx(1.0)
        names = ["angry", "happy", "sad"]
        assert row["predicted"] == names[int(np.argmax(probabilities))]
        assert row["emotion"] == manifest[row["id"]]["emotion"]
    truth = [row["emotion"] for row in rows]
    guess = [row["predicted"] for row in rows]
    assert balanced_accuracy_score(truth, guess) == 1.0
    reported = json.loads((output / "test_metrics.json").read_text())
    assert reported["UA"] == pytest.approx(
        balanced_accuracy_score(truth, guess)
    )
    assert reported["WA"] == pytest.approx(accuracy_score(truth, guess))
    assert reported["macro_F1"] == pytest.approx(
        f1_score(truth, guess, average="macro")
    )
    assert metrics["UA"] == reported["UA"]


def test_floor_is_at_chance_when_labels_carry_no_signal(tmp_path):
    """Random labels on the same tones: the floor cannot learn them."""
    frequencies = {"angry": 440.0, "happy": 440.0, "sad": 440.0}
    manifest = write_tones(tmp_path, frequencies, per_class=6)
    test = sorted(utt for utt in manifest if utt.startswith("s2_"))
    train = sorted(set(manifest) - set(test))
    split = FoldSplit(manifest, {"tones": train}, {"tones": test})
    features = utterance_features(manifest, manifest, progress=False)
    metrics = run_classical(split, "tones", str(tmp_path / "step"), features)
    assert metrics["UA"] < 0.75
