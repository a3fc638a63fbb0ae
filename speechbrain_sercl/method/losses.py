"""Supervised contrastive losses for cross-corpus emotion embeddings.

A stage-1 batch holds positives ``P`` (utterances with the batch's emotion
``e``) and negatives ``Q`` (any other emotion), marked by a boolean
``positive_mask``. Two losses pull ``P`` together and push it away from
``Q``; their sum is the stage-1 objective:

- :func:`supervised_infonce`: for each ordered pair ``(i, j)`` of distinct
  positives, ``-log(exp(s_ij/tau) / (exp(s_ij/tau) + sum_k exp(s_ik/tau)))``
  with ``k`` over ``Q``, averaged over the pairs (``s`` = cosine);
- :func:`cosine_margin_loss`: ``alpha * mean(1 - s(x_i, y_i))`` over the
  two halves ``x``, ``y`` of ``P`` paired in order, plus the mean over all
  ``(p, n)`` in ``P x Q`` of ``max(0, s(p, n) - margin)``.

The losses are plain functions (for ``!name:`` in YAML) with thin
``nn.Module`` wrappers (for ``!new:``). They compute in float32 at least
(float16 and bfloat16 inputs are upcast, autocast is switched off inside)
and return a zero that keeps the graph (``embeddings.sum() * 0``) when a
term has nothing to average, so that every parameter still receives a
gradient under DDP.

Example
-------
>>> import torch
>>> embeddings = torch.randn(8, 16)
>>> labels = torch.tensor([0, 0, 0, 0, 1, 2, 3, 1])
>>> positive_mask = positive_mask_from_labels(labels, 0)
>>> output = CrossCorpusContrastiveLoss()(embeddings, positive_mask)
>>> bool(output.total > 0)
True
"""

import contextlib
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = [
    "ContrastiveLossOutput",
    "CrossCorpusContrastiveLoss",
    "cosine_margin_loss",
    "cosine_similarity_matrix",
    "cross_corpus_contrastive_loss",
    "positive_mask_from_labels",
    "supervised_infonce",
]


class ContrastiveLossOutput(NamedTuple):
    """The stage-1 objective and what to log about it.

    Arguments
    ---------
    total : torch.Tensor
        ``contrastive + margin``, the value to back-propagate.
    contrastive : torch.Tensor
        The supervised InfoNCE term.
    margin : torch.Tensor
        The cosine margin term.
    positive_similarity : torch.Tensor
        Mean cosine over distinct positive pairs (detached; NaN with fewer
        than two positives).
    negative_similarity : torch.Tensor
        Mean cosine over positive-negative pairs (detached; NaN when either
        side is empty).

    Example
    -------
    >>> import torch
    >>> zero = torch.tensor(0.0)
    >>> ContrastiveLossOutput(zero, zero, zero, zero, zero).total
    tensor(0.)
    """

    total: torch.Tensor
    contrastive: torch.Tensor
    margin: torch.Tensor
    positive_similarity: torch.Tensor
    negative_similarity: torch.Tensor


def positive_mask_from_labels(labels, anchor):
    """Mark the utterances whose label equals the batch's emotion.

    Arguments
    ---------
    labels : torch.Tensor or list of str
        Integer labels of shape ``[N]`` (or ``[N, 1]``), or label names.
    anchor : int or str
        The batch's emotion, in the same form as ``labels``.

    Returns
    -------
    torch.Tensor
        Boolean mask of shape ``[N]``, True for positives (on the device of
        ``labels`` when it is a tensor).

    Example
    -------
    >>> import torch
    >>> positive_mask_from_labels(torch.tensor([2, 0, 2]), 2)
    tensor([ True, False,  True])
    >>> positive_mask_from_labels(["sad", "happy"], "happy")
    tensor([False,  True])
    """
    if isinstance(labels, torch.Tensor):
        if isinstance(anchor, str) or labels.is_floating_point():
            raise TypeError(
                "positive_mask_from_labels: labels is a tensor, so labels "
                f"must be integers and anchor an int, got {labels.dtype} "
                f"labels and anchor {anchor!r}"
            )
        if labels.dim() == 2 and labels.shape[1] == 1:
            labels = labels.squeeze(1)
        if labels.dim() != 1:
            raise ValueError(
                "positive_mask_from_labels: labels must have shape [N] or "
                f"[N, 1], got {tuple(labels.shape)}"
            )
        return labels == anchor
    if not all(isinstance(label, str) for label in labels):
        raise TypeError(
            "positive_mask_from_labels: labels must be an integer tensor or "
            "a list of str"
        )
    if not isinstance(anchor, str):
        raise TypeError(
            "positive_mask_from_labels: labels are str, so anchor must be a "
            f"str, got {anchor!r}"
        )
    return torch.tensor([label == anchor for label in labels], dtype=bool)


def cosine_similarity_matrix(embeddings):
    """Cosine similarity of every pair of rows.

    Arguments
    ---------
    embeddings : torch.Tensor
        Shape ``[N, D]``.

    Returns
    -------
    torch.Tensor
        Shape ``[N, N]``, entry ``(i, j)`` the cosine of rows ``i``, ``j``
        (0 where a row is all zeros).

    Example
    -------
    >>> import torch
    >>> cosine_similarity_matrix(torch.tensor([[1.0, 0.0], [2.0, 2.0]]))
    tensor([[1.0000, 0.7071],
            [0.7071, 1.0000]])
    """
    unit = F.normalize(embeddings, dim=-1)
    return unit @ unit.transpose(0, 1)


def supervised_infonce(embeddings, positive_mask, temperature=0.07):
    """Supervised InfoNCE of the positives against the negatives.

    For each ordered pair ``(i, j)`` of distinct positives the loss is
    ``-log(exp(s_ij/tau) / (exp(s_ij/tau) + sum_{k in Q} exp(s_ik/tau)))``
    (``s`` the cosine similarity, ``Q`` the negatives), averaged over the
    pairs. It is computed as ``logaddexp(s_ij, logsumexp_k s_ik) - s_ij``
    in float32 or wider. With no negative every pair costs 0.

    Arguments
    ---------
    embeddings : torch.Tensor
        Shape ``[N, D]`` or ``[N, 1, D]``.
    positive_mask : torch.Tensor
        Boolean, shape ``[N]``; True marks the batch's emotion.
    temperature : float
        The temperature ``tau`` (> 0).

    Returns
    -------
    torch.Tensor
        The scalar loss; ``embeddings.sum() * 0`` with fewer than two
        positives.

    Example
    -------
    >>> import math
    >>> import torch
    >>> embeddings = torch.eye(4)  # orthogonal: every cosine is 0
    >>> mask = torch.tensor([True, True, False, False])
    >>> loss = supervised_infonce(embeddings, mask)
    >>> math.isclose(loss.item(), math.log(3), rel_tol=1e-6)
    True
    """
    _check_positive_number(temperature, "temperature")
    embeddings = _as_matrix(embeddings)
    positive_mask = _check_positive_mask(positive_mask, embeddings)
    if int(positive_mask.sum()) < 2:
        return _graph_zero(embeddings)
    with _full_precision(embeddings) as embeddings:
        logits = cosine_similarity_matrix(embeddings) / temperature
        from_positives = logits[positive_mask]
        positive_logits = from_positives[:, positive_mask]
        negative_logsumexp = torch.logsumexp(
            from_positives[:, ~positive_mask], dim=1, keepdim=True
        )
        pair_losses = (
            torch.logaddexp(positive_logits, negative_logsumexp)
            - positive_logits
        )
        return pair_losses[_off_diagonal(len(positive_logits), logits)].mean()


def cosine_margin_loss(embeddings, positive_mask, alpha=0.5, margin=0.4):
    """Cosine alignment of positive pairs plus a margin hinge on negatives.

    The positives, in batch order, are split into a first half ``x`` and a
    second half ``y`` paired in order (``x_i`` with ``y_i``); with an odd
    count the last positive is left out of the pairing (it still enters
    the hinge). The loss is
    ``alpha * mean_i(1 - s(x_i, y_i)) + mean_{p in P, n in Q}
    max(0, s(p, n) - margin)``; an empty part contributes a graph-keeping 0.

    Arguments
    ---------
    embeddings : torch.Tensor
        Shape ``[N, D]`` or ``[N, 1, D]``.
    positive_mask : torch.Tensor
        Boolean, shape ``[N]``; True marks the batch's emotion.
    alpha : float
        Weight (>= 0) of the alignment term.
    margin : float
        Cosine (in [-1, 1]) above which a positive-negative pair is
        penalised.

    Returns
    -------
    torch.Tensor
        The scalar loss.

    Example
    -------
    >>> import torch
    >>> embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> mask = torch.tensor([True, True, False])
    >>> loss = cosine_margin_loss(embeddings, mask, alpha=0.5, margin=0.4)
    >>> round(loss.item(), 4)  # 0.5 * (1 - 0) + (0.7071 - 0.4)
    0.8071
    """
    _check_alpha_margin(alpha, margin)
    embeddings = _as_matrix(embeddings)
    positive_mask = _check_positive_mask(positive_mask, embeddings)
    zero = _graph_zero(embeddings)
    with _full_precision(embeddings) as embeddings:
        similarities = cosine_similarity_matrix(embeddings)
        positives = torch.nonzero(positive_mask).squeeze(1)
        half = len(positives) // 2
        pair_similarities = similarities[
            positives[:half], positives[half : 2 * half]
        ]
        alignment = _mean_or(1 - pair_similarities, zero)
        hinges = F.relu(similarities[positive_mask][:, ~positive_mask] - margin)
        return alpha * alignment + _mean_or(hinges, zero)


def cross_corpus_contrastive_loss(
    embeddings, positive_mask, temperature=0.07, alpha=0.5, margin=0.4
):
    """The stage-1 objective: supervised InfoNCE plus cosine margin loss.

    Arguments
    ---------
    embeddings : torch.Tensor
        Shape ``[N, D]`` or ``[N, 1, D]``.
    positive_mask : torch.Tensor
        Boolean, shape ``[N]``; True marks the batch's emotion.
    temperature : float
        Temperature of :func:`supervised_infonce`.
    alpha : float
        Alignment weight of :func:`cosine_margin_loss`.
    margin : float
        Hinge margin of :func:`cosine_margin_loss`.

    Returns
    -------
    ContrastiveLossOutput
        The total, its two terms and the mean positive / negative cosines.

    Example
    -------
    >>> import torch
    >>> embeddings = torch.randn(6, 8)
    >>> mask = torch.tensor([True, True, True, False, False, False])
    >>> output = cross_corpus_contrastive_loss(embeddings, mask)
    >>> torch.allclose(output.total, output.contrastive + output.margin)
    True
    """
    contrastive = supervised_infonce(embeddings, positive_mask, temperature)
    margin_term = cosine_margin_loss(embeddings, positive_mask, alpha, margin)
    positive_similarity, negative_similarity = _mean_similarities(
        _as_matrix(embeddings), positive_mask
    )
    return ContrastiveLossOutput(
        total=contrastive + margin_term,
        contrastive=contrastive,
        margin=margin_term,
        positive_similarity=positive_similarity,
        negative_similarity=negative_similarity,
    )


class CrossCorpusContrastiveLoss(torch.nn.Module):
    """Module form of :func:`cross_corpus_contrastive_loss`.

    Arguments
    ---------
    temperature : float
        Temperature (> 0) of the supervised InfoNCE term.
    alpha : float
        Alignment weight (>= 0) of the cosine margin term.
    margin : float
        Cosine margin in [-1, 1].

    Example
    -------
    >>> import torch
    >>> loss = CrossCorpusContrastiveLoss(temperature=0.07, alpha=0.5)
    >>> mask = torch.tensor([True, True, False, False])
    >>> output = loss(torch.randn(4, 8, requires_grad=True), mask)
    >>> output.total.backward()
    >>> output.positive_similarity.requires_grad
    False
    """

    def __init__(self, temperature=0.07, alpha=0.5, margin=0.4):
        super().__init__()
        _check_positive_number(temperature, "temperature")
        _check_alpha_margin(alpha, margin)
        self.temperature = temperature
        self.alpha = alpha
        self.margin = margin

    def forward(self, embeddings, positive_mask):
        """Compute the objective and its parts.

        Arguments
        ---------
        embeddings : torch.Tensor
            Shape ``[N, D]`` or ``[N, 1, D]``.
        positive_mask : torch.Tensor
            Boolean, shape ``[N]``.

        Returns
        -------
        ContrastiveLossOutput
            The total, its two terms and the mean positive/negative cosines.
        """
        return cross_corpus_contrastive_loss(
            embeddings,
            positive_mask,
            self.temperature,
            self.alpha,
            self.margin,
        )


def _mean_similarities(embeddings, positive_mask):
    """Detached mean cosine of positive pairs and of positive-negative
    pairs, NaN where there is no such pair."""
    with torch.no_grad(), _full_precision(embeddings) as embeddings:
        similarities = cosine_similarity_matrix(embeddings)
        from_positives = similarities[positive_mask]
        among_positives = from_positives[:, positive_mask]
        distinct = _off_diagonal(len(among_positives), similarities)
        return (
            _mean_or_nan(among_positives[distinct]),
            _mean_or_nan(from_positives[:, ~positive_mask]),
        )


def _as_matrix(embeddings):
    """Accept ``[N, D]`` or SpeechBrain's ``[N, 1, D]``; return ``[N, D]``."""
    if not isinstance(embeddings, torch.Tensor):
        raise TypeError(
            f"embeddings must be a torch.Tensor, got {type(embeddings)}"
        )
    if embeddings.dim() == 3 and embeddings.shape[1] == 1:
        return embeddings.squeeze(1)
    if embeddings.dim() != 2:
        raise ValueError(
            "embeddings must have shape [N, D] or [N, 1, D], got "
            f"{tuple(embeddings.shape)}"
        )
    return embeddings


def _check_positive_mask(positive_mask, embeddings):
    """Check that the mask is a bool tensor with one entry per embedding."""
    if (
        not isinstance(positive_mask, torch.Tensor)
        or positive_mask.dtype != torch.bool
    ):
        raise TypeError(
            "positive_mask must be a bool tensor (see "
            f"positive_mask_from_labels), got {type(positive_mask)}"
            + (
                f" of dtype {positive_mask.dtype}"
                if isinstance(positive_mask, torch.Tensor)
                else ""
            )
        )
    if positive_mask.shape != embeddings.shape[:1]:
        raise ValueError(
            f"positive_mask has shape {tuple(positive_mask.shape)} but there "
            f"are {len(embeddings)} embeddings: expected "
            f"({len(embeddings)},)"
        )
    return positive_mask.to(embeddings.device)


def _check_positive_number(value, name):
    """Raise ValueError unless ``value`` is a finite number > 0."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_alpha_margin(alpha, margin):
    """Raise ValueError for a negative alpha or a margin outside [-1, 1]."""
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    if not -1 <= margin <= 1:
        raise ValueError(
            f"margin is a cosine and must lie in [-1, 1], got {margin!r}"
        )


@contextlib.contextmanager
def _full_precision(embeddings):
    """Yield the embeddings in float32 or wider, with autocast disabled."""
    dtype = torch.promote_types(embeddings.dtype, torch.float32)
    with torch.autocast(embeddings.device.type, enabled=False):
        yield embeddings.to(dtype)


def _graph_zero(embeddings):
    """A float32-or-wider zero that keeps every input in the graph."""
    dtype = torch.promote_types(embeddings.dtype, torch.float32)
    return embeddings.to(dtype).sum() * 0


def _off_diagonal(size, like):
    """Boolean ``[size, size]`` mask, False on the diagonal."""
    return ~torch.eye(size, dtype=torch.bool, device=like.device)


def _mean_or(values, zero):
    """Mean of ``values``, or ``zero`` when there are none."""
    return values.mean() if values.numel() > 0 else zero


def _mean_or_nan(values):
    """Detached mean of ``values``, NaN when there are none."""
    if values.numel() == 0:
        return torch.full((), float("nan"), device=values.device)
    return values.mean().detach()
