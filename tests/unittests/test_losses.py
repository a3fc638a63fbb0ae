"""Tests for the stage-1 contrastive losses against independent references.

The references are float64 formulas written out pair by pair with Python
loops, hand-computed cases, and pytorch-metric-learning's ``NTXentLoss``.
"""

import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning.losses import NTXentLoss

from speechbrain_sercl.method.losses import (
    ContrastiveLossOutput,
    CrossCorpusContrastiveLoss,
    cosine_margin_loss,
    cosine_similarity_matrix,
    cross_corpus_contrastive_loss,
    positive_mask_from_labels,
    supervised_infonce,
)


@pytest.fixture
def device():
    """Run on cpu unless a test is parametrised otherwise."""
    return "cpu"


def cosine(u, v):
    """float64 cosine of two numpy vectors."""
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))


def reference_infonce(embeddings, mask, temperature):
    """The DESIGN.md formula, pair by pair, in float64."""
    z = embeddings.double().numpy()
    positives = [i for i, m in enumerate(mask.tolist()) if m]
    negatives = [i for i, m in enumerate(mask.tolist()) if not m]
    losses = []
    for i in positives:
        for j in positives:
            if i == j:
                continue
            numerator = math.exp(cosine(z[i], z[j]) / temperature)
            denominator = numerator + sum(
                math.exp(cosine(z[i], z[k]) / temperature) for k in negatives
            )
            losses.append(-math.log(numerator / denominator))
    return sum(losses) / len(losses)


def reference_margin(embeddings, mask, alpha, margin):
    """The DESIGN.md cosine margin loss, pair by pair, in float64."""
    z = embeddings.double().numpy()
    positives = [i for i, m in enumerate(mask.tolist()) if m]
    negatives = [i for i, m in enumerate(mask.tolist()) if not m]
    half = len(positives) // 2
    pairs = list(zip(positives[:half], positives[half : 2 * half], strict=True))
    alignment = sum(1 - cosine(z[x], z[y]) for x, y in pairs)
    alignment = alignment / len(pairs) if pairs else 0.0
    hinges = [
        max(0.0, cosine(z[p], z[n]) - margin)
        for p in positives
        for n in negatives
    ]
    separation = sum(hinges) / len(hinges) if hinges else 0.0
    return alpha * alignment + separation


def random_batch(seed, n=12, dim=6, n_positives=5):
    """Random embeddings with positives scattered through the batch."""
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, dim, generator=generator)
    order = torch.randperm(n, generator=generator)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[order[:n_positives]] = True
    return embeddings, mask


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_infonce_matches_loop_formula(seed, temperature, device):
    embeddings, mask = random_batch(seed)
    loss = supervised_infonce(embeddings.to(device), mask, temperature)
    expected = reference_infonce(embeddings, mask, temperature)
    assert loss.dtype == torch.float32
    assert math.isclose(loss.item(), expected, rel_tol=1e-5)


@pytest.mark.parametrize("n_positives, n_negatives", [(2, 1), (3, 5), (4, 9)])
def test_infonce_orthogonal_embeddings_give_log_one_plus_q(
    n_positives, n_negatives
):
    # Every cosine is 0, so each pair costs -log(1 / (1 + |Q|)).
    n = n_positives + n_negatives
    embeddings = torch.eye(n) * 3.0
    mask = torch.arange(n) < n_positives
    loss = supervised_infonce(embeddings, mask)
    assert math.isclose(loss.item(), math.log(1 + n_negatives), rel_tol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_infonce_equals_ntxent_with_one_positive_label(seed):
    # NTXentLoss (MeanReducer) averages -log(e^{s_ap/t} / (e^{s_ap/t} +
    # sum_n e^{s_an/t})) over every ordered pair (a, p) with the same label,
    # a != p, and n over every element whose label differs from a's. With
    # the positives sharing label 0 and each negative a label of its own,
    # negatives have no positive pair, so the pairs are exactly the ordered
    # pairs of distinct positives and n runs over exactly Q.
    embeddings, mask = random_batch(seed, n=16, dim=8, n_positives=8)
    labels = torch.zeros(16, dtype=torch.long)
    labels[~mask] = torch.arange(1, int((~mask).sum()) + 1)
    expected = NTXentLoss(temperature=0.07)(embeddings, labels)
    loss = supervised_infonce(embeddings, mask, temperature=0.07)
    assert torch.allclose(loss, expected, rtol=1e-5, atol=1e-6)


def test_infonce_without_negatives_is_zero():
    # exp(s)/(exp(s) + empty sum) = 1 for every pair.
    embeddings = torch.randn(4, 3, requires_grad=True)
    loss = supervised_infonce(embeddings, torch.ones(4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(embeddings.grad).all()


@pytest.mark.parametrize("n_positives", [0, 1])
def test_too_few_positives_give_graph_keeping_zero(n_positives):
    embeddings = torch.randn(5, 3, requires_grad=True)
    mask = torch.arange(5) < n_positives
    loss = supervised_infonce(embeddings, mask)
    loss.backward()
    assert loss.item() == 0.0
    assert embeddings.grad is not None
    assert torch.equal(embeddings.grad, torch.zeros(5, 3))


def test_infonce_accepts_speechbrain_shape():
    embeddings, mask = random_batch(0)
    flat = supervised_infonce(embeddings, mask)
    assert torch.equal(supervised_infonce(embeddings.unsqueeze(1), mask), flat)


def test_infonce_gradcheck_float64():
    embeddings, mask = random_batch(1, n=6, dim=4, n_positives=3)
    embeddings = embeddings.double().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda z: supervised_infonce(z, mask, temperature=0.2), (embeddings,)
    )


def test_margin_gradcheck_float64():
    embeddings, mask = random_batch(2, n=7, dim=4, n_positives=4)
    embeddings = embeddings.double().requires_grad_()
    # margin -1 keeps every hinge active, away from the kink at 0.
    assert torch.autograd.gradcheck(
        lambda z: cosine_margin_loss(z, mask, alpha=0.7, margin=-1.0),
        (embeddings,),
    )


def test_float64_stays_float64():
    embeddings, mask = random_batch(3)
    loss = supervised_infonce(embeddings.double(), mask)
    assert loss.dtype == torch.float64
    expected = reference_infonce(embeddings, mask, 0.07)
    assert math.isclose(loss.item(), expected, rel_tol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_computed_in_float32(dtype):
    embeddings, mask = random_batch(4, n=32, dim=16, n_positives=16)
    low = embeddings.to(dtype)
    # The reference sees the same rounded inputs, in float64.
    expected = CrossCorpusContrastiveLoss()(low.double(), mask)
    output = CrossCorpusContrastiveLoss()(low, mask)
    for value, reference in zip(output, expected, strict=True):
        assert value.dtype == torch.float32
        assert torch.isfinite(value)
        assert math.isclose(value.item(), reference.item(), rel_tol=1e-5)
    # Against the unrounded float32 inputs only input rounding remains.
    full = CrossCorpusContrastiveLoss()(embeddings, mask)
    assert math.isclose(output.total.item(), full.total.item(), rel_tol=5e-3)


def test_autocast_does_not_lower_precision():
    embeddings, mask = random_batch(5)
    expected = reference_infonce(embeddings, mask, 0.07)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = supervised_infonce(embeddings, mask)
    assert loss.dtype == torch.float32
    assert math.isclose(loss.item(), expected, rel_tol=1e-5)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_positives", [2, 5, 6])
def test_margin_matches_loop_formula(seed, n_positives):
    embeddings, mask = random_batch(seed, n_positives=n_positives)
    loss = cosine_margin_loss(embeddings, mask, alpha=0.5, margin=0.1)
    expected = reference_margin(embeddings, mask, 0.5, 0.1)
    assert math.isclose(loss.item(), expected, rel_tol=1e-5)


def test_margin_hand_case_pairs_halves_in_order():
    # Positives at rows 0, 2, 3, 4: x = (0, 2), y = (3, 4).
    # s(0, 3) = cos(e1, e1) = 1, s(2, 4) = cos(e2, -e2) = -1
    # alignment = 0.5 * ((1 - 1) + (1 + 1)) / 2 = 0.5.
    # Negative row 1 = e1 + e2: s = 1/sqrt2 with rows 0, 2, 3 and -1/sqrt2
    # with row 4; hinge at 0.4: 3 * (0.70711 - 0.4) / 4.
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    embeddings = torch.stack([e1, e1 + e2, e2, e1, -e2])
    mask = torch.tensor([True, False, True, True, True])
    loss = cosine_margin_loss(embeddings, mask, alpha=0.5, margin=0.4)
    expected = 0.5 + 3 * (1 / math.sqrt(2) - 0.4) / 4
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)


def test_margin_odd_count_drops_last_positive_from_pairing():
    # Positives 0, 1, 2: x = (0,), y = (1,); row 2 is left unpaired, so
    # making it opposite to everything changes nothing without negatives.
    e1 = torch.tensor([1.0, 0.0])
    embeddings = torch.stack([e1, e1, -e1])
    mask = torch.ones(3, dtype=torch.bool)
    loss = cosine_margin_loss(embeddings, mask, alpha=1.0, margin=0.4)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_margin_empty_parts_keep_graph():
    embeddings = torch.randn(3, 2, requires_grad=True)
    # One positive: no pair and hinge over 1 x 2 pairs with margin 1 -> 0.
    mask = torch.tensor([True, False, False])
    loss = cosine_margin_loss(embeddings, mask, alpha=0.5, margin=1.0)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(embeddings.grad, torch.zeros(3, 2))


def test_combined_output_matches_references():
    embeddings, mask = random_batch(6, n_positives=6)
    output = CrossCorpusContrastiveLoss(0.1, 0.3, 0.2)(embeddings, mask)
    assert isinstance(output, ContrastiveLossOutput)
    contrastive = reference_infonce(embeddings, mask, 0.1)
    margin = reference_margin(embeddings, mask, 0.3, 0.2)
    z = embeddings.double().numpy()
    positives = np.flatnonzero(mask.numpy())
    negatives = np.flatnonzero(~mask.numpy())
    positive_pairs = [
        cosine(z[i], z[j]) for i in positives for j in positives if i != j
    ]
    negative_pairs = [cosine(z[i], z[k]) for i in positives for k in negatives]
    assert math.isclose(output.contrastive.item(), contrastive, rel_tol=1e-5)
    assert math.isclose(output.margin.item(), margin, rel_tol=1e-5)
    assert math.isclose(output.total.item(), contrastive + margin, rel_tol=1e-5)
    assert math.isclose(
        output.positive_similarity.item(),
        np.mean(positive_pairs),
        rel_tol=1e-5,
    )
    assert math.isclose(
        output.negative_similarity.item(),
        np.mean(negative_pairs),
        rel_tol=1e-5,
    )


def test_similarity_logs_are_detached_and_nan_when_undefined():
    embeddings = random_batch(10, n=3, dim=4)[0].requires_grad_()
    output = cross_corpus_contrastive_loss(
        embeddings, torch.tensor([True, False, False])
    )
    assert not output.positive_similarity.requires_grad
    assert not output.negative_similarity.requires_grad
    assert math.isnan(output.positive_similarity.item())
    assert math.isfinite(output.negative_similarity.item())
    output.total.backward()
    assert embeddings.grad is not None


def test_gradients_reach_every_embedding():
    embeddings, mask = random_batch(8)
    embeddings.requires_grad_()
    CrossCorpusContrastiveLoss(margin=-1.0)(embeddings, mask).total.backward()
    assert (embeddings.grad.abs().sum(dim=1) > 0).all()


def test_cosine_similarity_matrix_matches_loop():
    embeddings, _ = random_batch(9, n=5)
    matrix = cosine_similarity_matrix(embeddings.double())
    z = embeddings.double().numpy()
    for i in range(5):
        for j in range(5):
            assert math.isclose(matrix[i, j].item(), cosine(z[i], z[j]))


def test_positive_mask_from_labels():
    assert positive_mask_from_labels(
        torch.tensor([[1], [3], [1]]), 1
    ).tolist() == [True, False, True]
    assert positive_mask_from_labels(["a", "b", "a"], "b").tolist() == [
        False,
        True,
        False,
    ]


@pytest.mark.parametrize(
    "labels, anchor, error",
    [
        (torch.tensor([0, 1]), "happy", TypeError),
        (torch.tensor([0.0, 1.0]), 0, TypeError),
        (["happy", "sad"], 1, TypeError),
        ([0, 1], 1, TypeError),
        (torch.zeros(2, 2, dtype=torch.long), 0, ValueError),
    ],
)
def test_positive_mask_from_labels_rejects_bad_input(labels, anchor, error):
    with pytest.raises(error, match="positive_mask_from_labels"):
        positive_mask_from_labels(labels, anchor)


@pytest.mark.parametrize(
    "embeddings, mask, error, message",
    [
        (torch.randn(4), torch.ones(4, dtype=bool), ValueError, "embeddings"),
        (torch.randn(4, 2, 3), torch.ones(4, dtype=bool), ValueError, "[N"),
        ([[1.0, 2.0]], torch.ones(1, dtype=bool), TypeError, "embeddings"),
        (torch.randn(4, 3), torch.ones(4), TypeError, "positive_mask"),
        (torch.randn(4, 3), [True] * 4, TypeError, "positive_mask"),
        (torch.randn(4, 3), torch.ones(5, dtype=bool), ValueError, "4 embed"),
    ],
)
def test_losses_reject_bad_input(embeddings, mask, error, message):
    for loss in (supervised_infonce, cosine_margin_loss):
        with pytest.raises(error, match=message.replace("[", r"\[")):
            loss(embeddings, mask)


@pytest.mark.parametrize(
    "make",
    [
        lambda: CrossCorpusContrastiveLoss(temperature=-1),
        lambda: CrossCorpusContrastiveLoss(margin=-2),
        lambda: CrossCorpusContrastiveLoss(temperature=float("inf")),
        lambda: CrossCorpusContrastiveLoss(alpha=-0.1),
        lambda: CrossCorpusContrastiveLoss(margin=1.5),
    ],
)
def test_modules_reject_bad_arguments(make):
    with pytest.raises(ValueError, match="temperature|alpha|margin"):
        make()
