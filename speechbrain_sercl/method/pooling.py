"""Mask-aware self-attention pooling of frame-level hidden states.

``C = softmax(W_c H^T) H``: one learned vector ``W_c`` scores every frame,
the scores are normalised over the valid frames of each utterance and the
frames are averaged with those weights. Padded frames get exactly zero
weight (their score is set to ``-inf`` before the softmax), so appending
padding never changes an embedding.

Example
-------
>>> import torch
>>> pooling = AttentionPooling(input_size=8)
>>> pooling(torch.randn(2, 5, 8), torch.tensor([1.0, 0.6])).shape
torch.Size([2, 8])
"""

import torch
import torch.nn.functional as F
from speechbrain.dataio.dataio import length_to_mask

__all__ = ["AttentionPooling"]


class AttentionPooling(torch.nn.Module):
    """Self-attention pooling over the valid frames of each utterance.

    Relative lengths follow SpeechBrain (``lengths * T`` frames are valid);
    the frame count is rounded to the nearest integer, as SpeechBrain's
    ``StatisticsPooling`` does (so ``5 / 7 * 7 = 5.0000001`` is 5 frames,
    not 6), and every utterance keeps at least one frame.

    Arguments
    ---------
    input_size : int
        Size ``D`` of each hidden state (768 for WavLM/HuBERT Base).

    Example
    -------
    >>> import torch
    >>> pooling = AttentionPooling(input_size=4)
    >>> hidden = torch.randn(1, 3, 4)
    >>> padded = torch.cat([hidden, torch.randn(1, 2, 4)], dim=1)
    >>> torch.allclose(pooling(hidden), pooling(padded, torch.tensor([0.6])))
    True
    """

    def __init__(self, input_size=768):
        super().__init__()
        if not isinstance(input_size, int) or input_size < 1:
            raise ValueError(
                f"input_size must be a positive int, got {input_size!r}"
            )
        self.input_size = input_size
        self.score = torch.nn.Linear(input_size, 1, bias=False)

    def forward(self, hidden_states, lengths=None):
        """Pool the hidden states into one vector per utterance.

        Arguments
        ---------
        hidden_states : torch.Tensor
            Shape ``[B, T, D]``.
        lengths : torch.Tensor, optional
            Relative lengths in (0, 1], shape ``[B]``; None means all
            frames are valid.

        Returns
        -------
        torch.Tensor
            Shape ``[B, D]``.
        """
        weights = self.attention_weights(hidden_states, lengths)
        return torch.bmm(weights.unsqueeze(1), hidden_states).squeeze(1)

    def attention_weights(self, hidden_states, lengths=None):
        """Attention weight of every frame.

        Arguments
        ---------
        hidden_states : torch.Tensor
            Shape ``[B, T, D]``.
        lengths : torch.Tensor, optional
            Relative lengths in (0, 1], shape ``[B]``; None means all
            frames are valid.

        Returns
        -------
        torch.Tensor
            Shape ``[B, T]``: each row sums to 1 over the valid frames and
            is 0 on padding.

        Example
        -------
        >>> import torch
        >>> pooling = AttentionPooling(input_size=4)
        >>> weights = pooling.attention_weights(
        ...     torch.randn(2, 4, 4), torch.tensor([1.0, 0.5])
        ... )
        >>> weights[1, 2:].tolist()
        [0.0, 0.0]
        >>> torch.allclose(weights.sum(dim=1), torch.ones(2))
        True
        """
        self._check_hidden_states(hidden_states)
        scores = self.score(hidden_states).squeeze(2)
        valid = _valid_frames(lengths, hidden_states)
        scores = scores.masked_fill(~valid, float("-inf"))
        return F.softmax(scores, dim=1)

    def _check_hidden_states(self, hidden_states):
        """Raise ValueError unless the input is ``[B, T, input_size]``."""
        if hidden_states.dim() != 3 or hidden_states.shape[2] != (
            self.input_size
        ):
            raise ValueError(
                "AttentionPooling: hidden_states must have shape [B, T, "
                f"{self.input_size}], got {tuple(hidden_states.shape)}"
            )


def _valid_frames(lengths, hidden_states):
    """Boolean ``[B, T]`` mask of the frames within each relative length."""
    batch, n_frames = hidden_states.shape[:2]
    if lengths is None:
        return torch.ones(
            batch, n_frames, dtype=torch.bool, device=hidden_states.device
        )
    if lengths.shape != (batch,):
        raise ValueError(
            f"AttentionPooling: lengths must have shape ({batch},) for "
            f"{batch} utterances, got {tuple(lengths.shape)}"
        )
    if ((lengths <= 0) | (lengths > 1)).any():
        raise ValueError(
            "AttentionPooling: lengths are relative and must lie in (0, 1], "
            f"got {lengths.tolist()}"
        )
    frames = torch.round(lengths.float() * n_frames).clamp(min=1)
    mask = length_to_mask(frames, max_len=n_frames, device=hidden_states.device)
    return mask.bool()
