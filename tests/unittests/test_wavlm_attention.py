"""FloatMaskAttention against Hugging Face's own WavLMAttention.

The reference is the unchanged Hugging Face module with the same weights
(a deep copy taken before :func:`use_float_padding_mask`), not a
re-derived formula: on a padded batch, in evaluation and in training
(dropout included), the output must be Hugging Face's bit for bit,
without the deprecation warning its boolean padding mask sets off.
"""

import copy
import warnings

import pytest
import torch
from transformers import WavLMConfig, WavLMModel

from speechbrain_sercl.method.tiny import TINY_MODELS
from speechbrain_sercl.method.wavlm_attention import (
    FloatMaskAttention,
    use_float_padding_mask,
)

VALID_FRAMES = (7, 12, 3)
MISMATCH = "mismatched key_padding_mask and attn_mask"


def _models(attention_dropout=0.0):
    """A random tiny WavLM from transformers, and a copy with ours."""
    config = {
        **TINY_MODELS["tiny-wavlm"],
        "attention_dropout": attention_dropout,
    }
    config.pop("model_type")
    torch.manual_seed(0)
    reference = WavLMModel(WavLMConfig(**config))
    ours = copy.deepcopy(reference)
    assert use_float_padding_mask(ours) == config["num_hidden_layers"]
    return reference, ours


def _padded_batch(hidden_size):
    """Hidden states ``[B, T, D]`` (random padding) and their frame mask."""
    generator = torch.Generator().manual_seed(1)
    frames = max(VALID_FRAMES)
    hidden = torch.randn(
        len(VALID_FRAMES), frames, hidden_size, generator=generator
    )
    mask = torch.arange(frames) < torch.tensor(VALID_FRAMES)[:, None]
    return hidden, mask


def test_every_layer_is_changed_and_keeps_its_weights():
    reference, ours = _models()
    for layer in ours.encoder.layers:
        assert type(layer.attention) is FloatMaskAttention
    assert reference.state_dict().keys() == ours.state_dict().keys()
    for name, weight in reference.state_dict().items():
        assert torch.equal(weight, ours.state_dict()[name]), name


@pytest.mark.parametrize("training", [False, True])
def test_the_output_is_hugging_faces_without_its_warning(training):
    reference, ours = _models(attention_dropout=0.5)
    reference.train(training), ours.train(training)
    hidden, mask = _padded_batch(reference.config.hidden_size)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.manual_seed(3)
        expected = reference.encoder(hidden.clone(), mask).last_hidden_state
    assert any(MISMATCH in str(w.message) for w in caught)  # the reference
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.manual_seed(3)
        found = ours.encoder(hidden.clone(), mask).last_hidden_state
    assert torch.equal(found, expected)
    if training:
        found.sum().backward()  # the graph is whole
        layer = ours.encoder.layers[0].attention
        assert layer.q_proj.weight.grad.abs().sum() > 0


def test_without_a_mask_nothing_changes():
    reference, ours = _models()
    reference.eval(), ours.eval()
    hidden, _ = _padded_batch(reference.config.hidden_size)
    with torch.no_grad():
        expected = reference.encoder(hidden.clone()).last_hidden_state
        found = ours.encoder(hidden.clone()).last_hidden_state
    assert torch.equal(found, expected)
