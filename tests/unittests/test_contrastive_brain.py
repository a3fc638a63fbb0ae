"""Stage 1's Brain computes the method's loss on the sampler's batches.

The ``ContrastiveBrain`` of ``hparams/wavlm.yaml`` (the paper's settings,
the tiny WavLM in place of WavLM Base+) gets the batches the stage-1
recipe makes (its ``dataio_prep``: dataset and cross-corpus sampler)
through its own dataloader, and runs ``compute_forward`` and
``compute_objectives`` on them as ``fit`` does. Each batch's loss, and its
gradient with respect to the embeddings, are compared with the method's
formulas (DESIGN.md, "The method, exactly") written out below as float64
loops over pairs, with the paper's tau = 0.07, alpha = 0.5, m = 0.4. The
positives are the first N/2 utterances of the batch: where the sampler
puts them, whatever their emotion, so a Brain that took the batch's
emotion from another element (a negative) gets another loss.

Tolerance: the Brain computes in float32 (cosines rounded to about 1e-7,
then divided by tau), the reference in float64; 1e-4 relative on the loss
and on the gradient (scaled by its largest entry) is a hundred times the
rounding and a thousandth of what another positive set changes.
"""

import math

import numpy as np
import pytest
import soundfile
import speechbrain as sb
import torch
from brain_fixtures import load_brain, load_recipe

from speechbrain_sercl.data.folds import FoldSplit
from speechbrain_sercl.method.brains import ContrastiveBrain

TEMPERATURE, ALPHA, MARGIN = 0.07, 0.5, 0.4
BATCH_SIZE, BATCHES = 8, 4
STAGE1_DATA = {
    "data_folder_iemocap": "unused",
    "data_folder_casia": "unused",
    "batch_size": BATCH_SIZE,
    "batches_per_epoch": BATCHES,
}
EMOTIONS = {"a": ("sad", "angry", "happy"), "b": ("sad", "angry", "fear")}
RATE = 16000


def reference_loss(embeddings, positives):
    """Contrastive + cosine-margin loss, pair by pair, in float64.

    Arguments
    ---------
    embeddings : torch.Tensor
        ``[N, D]`` float64 (may require grad).
    positives : list of int
        The rows with the batch's emotion, in batch order.

    Returns
    -------
    torch.Tensor
        The scalar loss.
    """
    unit = embeddings / embeddings.norm(dim=1, keepdim=True)
    cosine = unit @ unit.T
    negatives = [k for k in range(len(embeddings)) if k not in positives]
    pair_terms = []
    for i in positives:
        for j in positives:
            if i == j:
                continue
            numerator = torch.exp(cosine[i, j] / TEMPERATURE)
            others = sum(
                torch.exp(cosine[i, k] / TEMPERATURE) for k in negatives
            )
            pair_terms.append(-torch.log(numerator / (numerator + others)))
    contrastive = sum(pair_terms) / len(pair_terms)
    half = len(positives) // 2
    pairs = zip(positives[:half], positives[half : 2 * half], strict=True)
    alignment = sum(1 - cosine[x, y] for x, y in pairs) / half
    hinges = [
        torch.clamp(cosine[p, n] - MARGIN, min=0)
        for p in positives
        for n in negatives
    ]
    return contrastive + ALPHA * alignment + sum(hinges) / len(hinges)


def test_reference_gives_log_1_plus_q_on_orthogonal_embeddings():
    """The design's hand check: every cosine 0, the margin terms 0 and
    0.5 * (1 - 0), the contrastive term log(1 + |Q|)."""
    loss = reference_loss(torch.eye(6, dtype=torch.float64), [0, 1, 2, 3])
    assert loss.item() == pytest.approx(math.log(1 + 2) + ALPHA * 1.0)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """Two corpora of short wavs (0.2 to 0.5 s), two thirds for training."""
    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    manifest, train, test = {}, {}, {}
    for corpus, emotions in EMOTIONS.items():
        for index in range(18):
            utt = f"{corpus}{index:02d}"
            wav = folder / f"{utt}.wav"
            samples = 0.2 * rng.standard_normal(rng.integers(3200, 8000))
            soundfile.write(wav, samples, RATE, subtype="FLOAT")
            manifest[utt] = {
                "wav": str(wav),
                "corpus": corpus,
                "emotion": emotions[index % 3],
                "speaker": f"{corpus}s{index % 2}",
            }
            held_out = index % 6 == 5
            (test if held_out else train).setdefault(corpus, []).append(utt)
    return FoldSplit(manifest, train, test)


def test_each_batch_loss_and_gradient_match_the_formulas(split, tmp_path):
    torch.manual_seed(0)
    brain, hparams = load_brain(
        "hparams/wavlm.yaml", ContrastiveBrain, tmp_path, STAGE1_DATA
    )
    train_data, sampler = load_recipe("contrastive").dataio_prep(hparams, split)
    loader = brain.make_dataloader(
        train_data, sb.Stage.TRAIN, batch_sampler=sampler
    )
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    n_positives = BATCH_SIZE // 2
    emotions_seen = set()
    batches = list(loader)
    assert len(batches) == BATCHES
    for batch in batches:
        # What the sampler promises, checked on the batch itself.
        assert set(batch.id) <= set(split.train())
        first, *others = batch.emotion[:n_positives]
        assert all(emotion == first for emotion in others)
        assert first not in batch.emotion[n_positives:]
        emotions_seen.add(first)

        embeddings = brain.compute_forward(batch, sb.Stage.TRAIN)
        loss = brain.compute_objectives(embeddings, batch, sb.Stage.TRAIN)
        (gradient,) = torch.autograd.grad(loss, embeddings)

        reference_input = embeddings.detach().double().requires_grad_()
        expected = reference_loss(reference_input, list(range(n_positives)))
        (expected_gradient,) = torch.autograd.grad(expected, reference_input)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
        scale = expected_gradient.abs().max().item()
        np.testing.assert_allclose(
            gradient.double().numpy(),
            expected_gradient.numpy(),
            rtol=0,
            atol=1e-4 * scale,
        )
    # More than one emotion was drawn, so no fixed emotion passes.
    assert len(emotions_seen) > 1
