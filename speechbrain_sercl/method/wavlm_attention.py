"""WavLM's self-attention, one utterance at a time when not training.

Hugging Face's ``WavLMAttention`` computes its gated relative position
bias and its attention scores for the whole padded batch at once: tensors
of ``[batch x heads, T, T]`` floats (78 MB for 8 utterances of 9 s), to
which ``torch.nn.functional.multi_head_attention_forward`` then adds a
boolean key-padding mask of another type than the float bias (a
deprecated mix that warns, and one more such tensor). On a CPU these
passes over memory cost more than the matrix products: in
``benchmarks/inference.py`` sorted batches of 8 were about twice as slow
as one file at a time (``benchmarks/profile_inference.py`` breaks it
down).

:class:`UtteranceAttention` is ``WavLMAttention`` with the same weights
and, outside training, runs the attention of each utterance on its own
valid frames, exactly as a batch of that utterance alone does: same
operations, same shapes, no padding mask, so an utterance gets the same
outputs in any batch, bit for bit. The padded frames' outputs are zeros
(nothing reads them: the next layers never attend to them, and the
pooling skips them). In training, Hugging Face's batched computation runs
unchanged (its dropout draws stay the same), with the key-padding mask
given as a float mask like the bias (``-inf`` on padded frames), which is
what PyTorch turns the boolean mask into anyway.

:func:`attend_by_utterance` puts it into a ``WavLMModel``.

Authors
 * speechbrain-sercl developers
"""

import torch
import torch.nn.functional as F
from transformers.models.wavlm.modeling_wavlm import WavLMAttention

__all__ = ["UtteranceAttention", "attend_by_utterance"]


def attend_by_utterance(model):
    """Make every attention layer of a WavLM an :class:`UtteranceAttention`.

    Arguments
    ---------
    model : transformers.WavLMModel
        Changed in place (the layers keep their weights).

    Returns
    -------
    int
        The number of layers changed.

    Example
    -------
    >>> from transformers import WavLMConfig, WavLMModel
    >>> config = WavLMConfig(
    ...     hidden_size=16,
    ...     num_hidden_layers=2,
    ...     num_attention_heads=2,
    ...     intermediate_size=32,
    ...     conv_dim=(8, 8),
    ...     conv_kernel=(10, 3),
    ...     conv_stride=(5, 2),
    ...     num_conv_pos_embeddings=4,
    ...     num_conv_pos_embedding_groups=2,
    ... )
    >>> attend_by_utterance(WavLMModel(config))
    2
    """
    layers = [layer.attention for layer in model.encoder.layers]
    for attention in layers:
        attention.__class__ = UtteranceAttention
    return len(layers)


class UtteranceAttention(WavLMAttention):
    """``WavLMAttention``, computed utterance by utterance outside training.

    Takes and returns what ``WavLMAttention`` does; the position bias it
    passes on to the next layer is ``[heads, T, T]`` outside training
    (the same for every utterance) and Hugging Face's
    ``[batch x heads, T, T]`` in training.
    """

    def forward(
        self,
        hidden_states,
        attention_mask=None,
        position_bias=None,
        index=0,
        **kwargs,
    ):
        """Self-attention over the valid frames of each utterance.

        Arguments
        ---------
        hidden_states : torch.Tensor
            ``[B, T, D]``.
        attention_mask : torch.Tensor, optional
            ``[B, T]``, true (or 1) on each utterance's first, valid,
            frames; None when no utterance is padded.
        position_bias : torch.Tensor, optional
            The relative position bias of the first layer; None there.
        index : int
            The layer's index (unused, as in Hugging Face's).
        **kwargs : dict
            Hugging Face's keyword arguments, passed on in training.

        Returns
        -------
        tuple
            The attention's output ``[B, T, D]``, its weights (None
            outside training) and the position bias for the next layer.
        """
        if self.training:
            return super().forward(
                hidden_states, attention_mask, position_bias, index, **kwargs
            )
        batch, frames, _ = hidden_states.shape
        if position_bias is None:
            position_bias = self.compute_bias(frames, frames)
        position_bias = position_bias.view(-1, self.num_heads, frames, frames)
        position_bias = position_bias[0]
        output = torch.zeros_like(hidden_states)
        for row, valid in enumerate(
            _valid_frames(attention_mask, batch, frames)
        ):
            output[row, :valid] = self._attend(
                hidden_states[row : row + 1, :valid],
                position_bias[:, :valid, :valid],
            )[0]
        return output, None, position_bias

    def _attend(self, hidden_states, position_bias):
        """Hugging Face's attention of one unpadded utterance ``[1, T, D]``."""
        frames = hidden_states.shape[1]
        heads = hidden_states.view(
            hidden_states.shape[:-1] + (self.num_heads, -1)
        )
        heads = heads.permute(0, 2, 1, 3)
        projected = self.gru_rel_pos_linear(heads)
        projected = projected.view(heads.shape[:-1] + (2, 4)).sum(-1)
        gate_a, gate_b = torch.sigmoid(projected).chunk(2, dim=-1)
        gate = gate_a * (gate_b * self.gru_rel_pos_const - 1.0) + 2.0
        gated_bias = gate.view(self.num_heads, -1, 1) * position_bias
        gated_bias = gated_bias.view((-1, frames, frames))
        return self._multi_head_attention(hidden_states, None, gated_bias)[0]

    def torch_multi_head_self_attention(
        self, hidden_states, attention_mask, gated_position_bias
    ):
        """Hugging Face's batched attention, with a float padding mask.

        Arguments
        ---------
        hidden_states : torch.Tensor
            ``[B, T, D]``.
        attention_mask : torch.Tensor or None
            ``[B, T]``, true (or 1) on valid frames.
        gated_position_bias : torch.Tensor
            ``[B x heads, T, T]``.

        Returns
        -------
        tuple
            The output ``[B, T, D]`` and the weights, as Hugging Face's.
        """
        padding = None
        if attention_mask is not None:
            padding = torch.zeros(
                attention_mask.shape,
                dtype=gated_position_bias.dtype,
                device=gated_position_bias.device,
            ).masked_fill(attention_mask.ne(1), float("-inf"))
        return self._multi_head_attention(
            hidden_states, padding, gated_position_bias
        )

    def _multi_head_attention(self, hidden_states, padding, bias):
        """Hugging Face's call of PyTorch's attention, given the float
        key-padding mask ``padding`` (or None) instead of a boolean one."""
        query = hidden_states.transpose(0, 1)
        output, weights = F.multi_head_attention_forward(
            query,
            query,
            query,
            self.embed_dim,
            self.num_heads,
            torch.empty([0]),
            torch.cat((self.q_proj.bias, self.k_proj.bias, self.v_proj.bias)),
            None,
            None,
            False,
            self.dropout,
            self.out_proj.weight,
            self.out_proj.bias,
            self.training,
            padding,
            need_weights=True,  # Hugging Face's choice: the same kernels
            attn_mask=bias,
            use_separate_proj_weight=True,
            q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight,
            v_proj_weight=self.v_proj.weight,
        )
        output = output.transpose(0, 1)
        if weights is not None:  # averaged over heads, as Hugging Face's
            weights = weights[:, None].broadcast_to(
                weights.shape[:1] + (self.num_heads,) + weights.shape[1:]
            )
        return output, weights


def _valid_frames(attention_mask, batch, frames):
    """The valid frames of each utterance: a mask's leading true frames."""
    if attention_mask is None:
        return [frames] * batch
    valid = attention_mask.ne(0)
    counts = valid.sum(dim=1)
    positions = torch.arange(frames, device=valid.device)
    if not torch.equal(valid, positions < counts[:, None]):
        raise ValueError(
            "UtteranceAttention needs each utterance's valid frames first "
            "(an attention mask of leading ones)"
        )
    return counts.tolist()
