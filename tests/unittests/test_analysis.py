"""Layer-wise pair similarity against a brute-force loop over pairs.

The references here do not use the code under test: each utterance runs
alone through the speech model (no padding at all) and its frames are
averaged with ``mean``; the similarities are a Python double loop over
pairs in float64.
"""

import itertools
import math

import pytest
import torch

from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.reporting.analysis import (
    PAIR_KINDS,
    capped_by_emotion,
    layer_features,
    layer_similarity,
    pair_similarities,
)

# Padded batch vs each utterance alone: the same computation up to float32
# rounding (the CNN runs on valid samples, the transformer masks padding).
BATCH_TOLERANCE = 1e-5
EMOTIONS = ["sad", "angry", "sad", "happy", "angry", "sad", "happy"]
CORPORA = ["a", "a", "b", "b", "a", "b", "b"]


def brute_force(features, emotions, corpora):
    """Mean cosine similarity per pair kind, pair by pair, in float64."""
    sums = dict.fromkeys(PAIR_KINDS, 0.0)
    counts = dict.fromkeys(PAIR_KINDS, 0)
    rows = [[float(x) for x in row] for row in features]
    for i, j in itertools.combinations(range(len(rows)), 2):
        dot = sum(x * y for x, y in zip(rows[i], rows[j], strict=True))
        norms = math.sqrt(sum(x * x for x in rows[i])) * math.sqrt(
            sum(y * y for y in rows[j])
        )
        sign = "positive" if emotions[i] == emotions[j] else "negative"
        place = "within" if corpora[i] == corpora[j] else "across"
        for kind in (sign, f"{sign}_{place}"):
            sums[kind] += dot / norms
            counts[kind] += 1
    return {
        kind: sums[kind] / counts[kind] if counts[kind] else math.nan
        for kind in PAIR_KINDS
    }


@pytest.fixture(scope="module")
def ssl(tmp_path_factory):
    torch.manual_seed(0)
    return SSLBackbone(
        "tiny-wavlm",
        tmp_path_factory.mktemp("tiny"),
        stage="classifier",
        output_all_hiddens=True,
    )


@pytest.fixture(scope="module")
def waveforms():
    generator = torch.Generator().manual_seed(1)
    lengths = [16000, 5000, 12345, 8000, 16000, 3300, 9999]
    return [torch.randn(n, generator=generator) for n in lengths]


def alone_features(ssl, waveforms):
    """[L + 1, N, D]: each utterance alone, the mean of all its frames."""
    with torch.no_grad():
        return torch.stack(
            [ssl(wav[None])[:, 0].mean(dim=1) for wav in waveforms], dim=1
        )


def test_layer_similarity_matches_a_loop_over_pairs(ssl, waveforms):
    reference = alone_features(ssl, waveforms)
    computed = layer_similarity(
        layer_features(ssl, waveforms, batch_size=4), EMOTIONS, CORPORA
    )
    assert len(computed) == ssl.num_layers + 1
    for layer, row in enumerate(computed):
        expected = brute_force(reference[layer], EMOTIONS, CORPORA)
        assert row == pytest.approx(expected, abs=BATCH_TOLERANCE), layer


def test_batching_does_not_change_the_features(ssl, waveforms):
    alone = layer_features(ssl, waveforms, batch_size=1)
    padded = layer_features(ssl, waveforms, batch_size=len(waveforms))
    torch.testing.assert_close(
        padded, alone, atol=BATCH_TOLERANCE, rtol=BATCH_TOLERANCE
    )


def test_pair_similarities_match_the_loop_in_float64():
    features = torch.randn(9, 5, dtype=torch.float64)
    emotions = ["a", "b", "c"] * 3
    corpora = ["x"] * 4 + ["y"] * 5
    computed = pair_similarities(features, emotions, corpora)
    expected = brute_force(features, emotions, corpora)
    assert computed == pytest.approx(expected, abs=1e-12)


def test_no_pair_of_a_kind_gives_nan():
    features = torch.randn(3, 4)
    computed = pair_similarities(features, ["a", "a", "b"], ["x", "x", "x"])
    assert math.isnan(computed["positive_across"])
    assert math.isnan(computed["negative_across"])
    assert not math.isnan(computed["positive_within"])


def test_known_structure_positive_pairs_exceed_negative_ones():
    """Layer 0: noise only; layer 1: one direction per emotion plus noise,
    the same across corpora. Only layer 1 separates the pairs, by a gap
    close to the one the construction implies."""
    generator = torch.Generator().manual_seed(0)
    emotions = [
        e for e in ("angry", "happy", "sad", "neutral") for _ in range(6)
    ]
    corpora = ["x", "y"] * (len(emotions) // 2)
    directions = torch.eye(8)[:4] * 3.0
    index = {e: i for i, e in enumerate(dict.fromkeys(emotions))}
    noise = torch.randn(2, len(emotions), 8, generator=generator) * 0.3
    layers = noise.clone()
    layers[1] += directions[[index[e] for e in emotions]]
    rows = layer_similarity(layers, emotions, corpora)
    assert abs(rows[0]["positive"] - rows[0]["negative"]) < 0.1
    assert rows[1]["positive"] > rows[1]["negative"] + 0.8
    assert rows[1]["positive_across"] > rows[1]["negative_across"] + 0.8
    # Orthogonal directions of norm 3 and noise of variance 8 * 0.09:
    # positives ~ 9 / (9 + 0.72), negatives ~ 0.
    assert rows[1]["positive"] == pytest.approx(9 / 9.72, abs=0.05)
    assert rows[1]["negative"] == pytest.approx(0.0, abs=0.05)


def test_the_cap_keeps_every_emotion_and_is_seeded():
    ids = [f"u{i}" for i in range(20)]
    emotions = ["a"] * 17 + ["b", "b", "c"]
    kept = capped_by_emotion(ids, emotions, 7, seed=3)
    assert len(kept) == 7 == len(set(kept))
    assert {"u17", "u18", "u19"} <= set(kept)
    assert kept == capped_by_emotion(ids, emotions, 7, seed=3)
    assert capped_by_emotion(ids, emotions, 20) == ids
