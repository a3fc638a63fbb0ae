"""Tests for the mask-aware attention pooling.

References: the softmax formula written out in float64 numpy, padding
invariance, one-utterance-at-a-time equivalence and autograd checks.
"""

import numpy as np
import pytest
import torch
from torch.func import functional_call

from speechbrain_sercl.method.pooling import AttentionPooling


@pytest.fixture
def device():
    """Run on cpu."""
    return "cpu"


def make_pooling(input_size=6, seed=0, dtype=torch.float32):
    """A pooling layer with seeded weights."""
    torch.manual_seed(seed)
    return AttentionPooling(input_size=input_size).to(dtype)


def reference_pooling(pooling, hidden):
    """``softmax(W_c H^T) H`` for one unpadded utterance, float64 numpy."""
    w = pooling.score.weight.detach().double().numpy()[0]
    h = hidden.detach().double().numpy()
    scores = h @ w
    weights = np.exp(scores - scores.max())
    weights = weights / weights.sum()
    return weights, weights @ h


def test_matches_softmax_formula_on_unpadded_input(device):
    pooling = make_pooling().to(device)
    hidden = torch.randn(3, 7, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        pooled = pooling(hidden.to(device))
        weights = pooling.attention_weights(hidden.to(device))
    for b in range(3):
        expected_weights, expected = reference_pooling(pooling, hidden[b])
        np.testing.assert_allclose(weights[b].numpy(), expected_weights, 1e-5)
        np.testing.assert_allclose(pooled[b].numpy(), expected, 1e-5)


@pytest.mark.parametrize("n_valid, n_padding", [(1, 4), (5, 2), (9, 11)])
def test_appended_padding_changes_nothing(n_valid, n_padding):
    pooling = make_pooling()
    generator = torch.Generator().manual_seed(n_valid)
    hidden = torch.randn(1, n_valid, 6, generator=generator)
    garbage = 1e4 * torch.randn(1, n_padding, 6, generator=generator)
    padded = torch.cat([hidden, garbage], dim=1)
    lengths = torch.tensor([n_valid / (n_valid + n_padding)])
    expected = reference_pooling(pooling, hidden[0])[1]
    np.testing.assert_allclose(
        pooling(padded, lengths)[0].detach().numpy(), expected, rtol=1e-5
    )


def test_weights_sum_to_one_and_vanish_on_padding():
    pooling = make_pooling()
    hidden = torch.randn(4, 10, 6)
    lengths = torch.tensor([1.0, 0.7, 0.35, 0.1])
    weights = pooling.attention_weights(hidden, lengths)
    for b, n_valid in enumerate([10, 7, 4, 1]):
        assert weights[b, :n_valid].sum().item() == pytest.approx(1.0)
        assert (weights[b, :n_valid] > 0).all()
        assert (weights[b, n_valid:] == 0).all()


def test_batched_equals_one_at_a_time():
    pooling = make_pooling()
    n_valid = [8, 3, 6, 1]
    utterances = [torch.randn(1, n, 6) for n in n_valid]
    batch = torch.zeros(4, 8, 6)
    for b, utterance in enumerate(utterances):
        batch[b, : n_valid[b]] = utterance[0]
    lengths = torch.tensor(n_valid) / 8
    pooled = pooling(batch, lengths)
    for b, utterance in enumerate(utterances):
        torch.testing.assert_close(pooled[b : b + 1], pooling(utterance))


def test_relative_lengths_are_rounded_to_frames():
    # 5 / 7 * 7 is not exactly 5 in floating point: still 5 frames.
    pooling = make_pooling()
    hidden = torch.randn(2, 7, 6)
    lengths = torch.tensor([5 / 7, 3 / 7])
    valid = pooling.attention_weights(hidden, lengths) > 0
    assert valid.sum(dim=1).tolist() == [5, 3]


def test_tiny_length_keeps_one_frame():
    pooling = make_pooling()
    hidden = torch.randn(1, 10, 6)
    pooled = pooling(hidden, torch.tensor([0.01]))
    torch.testing.assert_close(pooled, hidden[:, 0])


def test_gradcheck_float64_with_padding():
    pooling = make_pooling(input_size=3, dtype=torch.float64)
    hidden = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    weight = pooling.score.weight.detach().clone().requires_grad_()
    lengths = torch.tensor([1.0, 0.5], dtype=torch.float64)

    def pool(hidden, weight):
        parameters = {"score.weight": weight}
        return functional_call(pooling, parameters, (hidden, lengths))

    assert torch.autograd.gradcheck(pool, (hidden, weight))
    pool(hidden, weight).sum().backward()
    assert (hidden.grad[1, 2:] == 0).all()
    assert (hidden.grad[1, :2] != 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_is_finite_and_close(dtype):
    pooling = make_pooling()
    hidden = torch.randn(2, 5, 6)
    lengths = torch.tensor([1.0, 0.4])
    expected = pooling(hidden, lengths)
    low = make_pooling(dtype=dtype)(hidden.to(dtype), lengths)
    assert torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), expected, rtol=5e-2, atol=5e-2)


@pytest.mark.parametrize(
    "hidden, lengths, message",
    [
        (torch.randn(2, 5), None, "hidden_states"),
        (torch.randn(2, 5, 4), None, "hidden_states"),
        (torch.randn(2, 5, 6), torch.ones(3), "lengths"),
        (torch.randn(2, 5, 6), torch.tensor([1.0, 0.0]), r"\(0, 1\]"),
        (torch.randn(2, 5, 6), torch.tensor([1.0, 1.5]), r"\(0, 1\]"),
    ],
)
def test_rejects_bad_input(hidden, lengths, message):
    with pytest.raises(ValueError, match=message):
        make_pooling()(hidden, lengths)


@pytest.mark.parametrize("input_size", [0, -3, 2.5])
def test_rejects_bad_input_size(input_size):
    with pytest.raises(ValueError, match="input_size"):
        AttentionPooling(input_size=input_size)
