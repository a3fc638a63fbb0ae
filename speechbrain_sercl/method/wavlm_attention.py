"""WavLM's self-attention given its padding mask in one type with its bias.

Hugging Face's ``WavLMAttention`` passes PyTorch's
``multi_head_attention_forward`` a boolean key-padding mask beside a float
attention mask (its gated relative position bias). PyTorch turns the
boolean mask into a float one (``-inf`` on padded frames) and warns, once
per layer and call, that mixing the two types is deprecated.
:class:`FloatMaskAttention` is ``WavLMAttention`` with the same weights
that hands PyTorch that float mask itself: the same computation, bit for
bit, dropout draws included, and no warning.

:func:`use_float_padding_mask` puts it into a ``WavLMModel``.

Authors
 * speechbrain-sercl developers
"""

import torch
import torch.nn.functional as F
from transformers.models.wavlm.modeling_wavlm import WavLMAttention

__all__ = ["FloatMaskAttention", "use_float_padding_mask"]


def use_float_padding_mask(model):
    """Make every attention layer of a WavLM a :class:`FloatMaskAttention`.

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
    >>> use_float_padding_mask(WavLMModel(config))
    2
    """
    layers = [layer.attention for layer in model.encoder.layers]
    for attention in layers:
        attention.__class__ = FloatMaskAttention
    return len(layers)


class FloatMaskAttention(WavLMAttention):
    """``WavLMAttention`` whose padding mask reaches PyTorch as floats."""

    def torch_multi_head_self_attention(
        self, hidden_states, attention_mask, gated_position_bias
    ):
        """Hugging Face's attention, with a float key-padding mask.

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
            The output ``[B, T, D]`` and the attention weights ``[B,
            heads, T, T]`` (averaged over heads), as Hugging Face's.
        """
        padding = None
        if attention_mask is not None:
            padding = torch.zeros(
                attention_mask.shape,
                dtype=gated_position_bias.dtype,
                device=gated_position_bias.device,
            ).masked_fill(attention_mask.ne(1), float("-inf"))
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
            need_weights=True,  # as Hugging Face: the same kernels
            attn_mask=gated_position_bias,
            use_separate_proj_weight=True,
            q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight,
            v_proj_weight=self.v_proj.weight,
        )
        weights = weights[:, None].broadcast_to(
            weights.shape[:1] + (self.num_heads,) + weights.shape[1:]
        )
        return output.transpose(0, 1), weights
