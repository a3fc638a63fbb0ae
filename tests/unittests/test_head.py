"""Tests for the emotion classification head against a float64 formula."""

import numpy as np
import pytest
import torch

from speechbrain_sercl.method.head import EmotionClassifier


def reference_log_probabilities(head, embeddings):
    """``log_softmax(W2 relu(W1 x + b1) + b2)`` in float64 numpy."""
    first, _, second, _ = head.layers
    w1, b1 = (p.detach().double().numpy() for p in (first.weight, first.bias))
    w2, b2 = (p.detach().double().numpy() for p in second.parameters())
    x = embeddings.detach().double().numpy()
    logits = np.maximum(x @ w1.T + b1, 0.0) @ w2.T + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def make_head(**kwargs):
    """A seeded head with small default sizes."""
    torch.manual_seed(0)
    sizes = {"input_size": 10, "n_classes": 4, "hidden_size": 7}
    return EmotionClassifier(**{**sizes, **kwargs})


def test_matches_float64_formula():
    head = make_head()
    embeddings = torch.randn(5, 10)
    with torch.no_grad():
        log_probabilities = head(embeddings)
    np.testing.assert_allclose(
        log_probabilities.numpy(),
        reference_log_probabilities(head, embeddings),
        rtol=1e-5,
        atol=1e-6,
    )


def test_probabilities_sum_to_one():
    head = make_head(n_classes=6)
    with torch.no_grad():
        probabilities = head(10 * torch.randn(8, 10)).double().exp()
    assert probabilities.shape == (8, 6)
    np.testing.assert_allclose(probabilities.sum(dim=1).numpy(), 1.0, 1e-6)


def test_speechbrain_shape_equals_flat_shape():
    head = make_head()
    embeddings = torch.randn(3, 10)
    torch.testing.assert_close(head(embeddings.unsqueeze(1)), head(embeddings))


def test_paper_sizes():
    head = EmotionClassifier()
    first, _, second, _ = head.layers
    assert (first.in_features, first.out_features) == (768, 256)
    assert (second.in_features, second.out_features) == (256, 4)
    assert head(torch.randn(2, 1, 768)).shape == (2, 4)


@pytest.mark.parametrize("shape", [(3,), (3, 9), (3, 2, 10), (3, 1, 9)])
def test_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match=r"\[B, 10\]"):
        make_head()(torch.randn(*shape))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"input_size": 0}, "input_size"),
        ({"n_classes": 1}, "n_classes"),
        ({"n_classes": 4.0}, "n_classes"),
        ({"hidden_size": True}, "hidden_size"),
    ],
)
def test_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_head(**kwargs)
