"""UtteranceAttention against Hugging Face's own WavLMAttention.

The reference is the unchanged Hugging Face module with the same weights
(a deep copy taken before :func:`attend_by_utterance`), not a re-derived
formula: outside training each utterance of a padded batch must get what
Hugging Face gives that utterance alone, bit for bit; in training the
output must be Hugging Face's, bit for bit, dropout included, without the
deprecation warning that its boolean padding mask sets off.
"""

import copy
import warnings

import pytest
import torch
from transformers import WavLMConfig, WavLMModel

from speechbrain_sercl.method.tiny import TINY_MODELS
from speechbrain_sercl.method.wavlm_attention import (
    UtteranceAttention,
    attend_by_utterance,
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
    assert attend_by_utterance(ours) == config["num_hidden_layers"]
    return reference, ours


def _padded_batch(hidden_size, valid_frames=VALID_FRAMES):
    """Hidden states ``[B, T, D]`` (random padding) and their frame mask."""
    generator = torch.Generator().manual_seed(1)
    frames = max(valid_frames)
    hidden = torch.randn(
        len(valid_frames), frames, hidden_size, generator=generator
    )
    mask = torch.arange(frames) < torch.tensor(valid_frames)[:, None]
    return hidden, mask


def _encode(model, hidden, mask):
    """The encoder's last hidden states (it zeroes padded frames itself)."""
    with torch.no_grad():
        return model.encoder(hidden.clone(), mask).last_hidden_state


def test_every_layer_is_changed_and_keeps_its_weights():
    reference, ours = _models()
    for layer in ours.encoder.layers:
        assert type(layer.attention) is UtteranceAttention
    for (name, ref), (_, mine) in zip(
        reference.state_dict().items(), ours.state_dict().items(), strict=True
    ):
        assert torch.equal(ref, mine), name


def test_outside_training_each_utterance_gets_what_it_gets_alone():
    reference, ours = _models()
    reference.eval(), ours.eval()
    hidden, mask = _padded_batch(reference.config.hidden_size)
    batched = _encode(ours, hidden, mask)
    for row, valid in enumerate(VALID_FRAMES):
        alone = _encode(reference, hidden[row : row + 1, :valid], None)
        assert torch.allclose(batched[row, :valid], alone[0], atol=1e-6)
    # The attention itself does exactly what Hugging Face does alone.
    layer = ours.encoder.layers[0].attention
    reference_layer = reference.encoder.layers[0].attention
    with torch.no_grad():
        output, weights, bias = layer(hidden, mask)
        for row, valid in enumerate(VALID_FRAMES):
            alone, *_ = reference_layer(hidden[row : row + 1, :valid])
            assert torch.equal(output[row, :valid], alone[0])
            assert not output[row, valid:].any()
    assert weights is None
    assert bias.shape == (reference.config.num_attention_heads, 12, 12)


def test_outside_training_the_batch_matches_hugging_faces_batch():
    reference, ours = _models()
    reference.eval(), ours.eval()
    hidden, mask = _padded_batch(reference.config.hidden_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Hugging Face's mixed mask types
        expected = _encode(reference, hidden, mask)
    found = _encode(ours, hidden, mask)
    for row, valid in enumerate(VALID_FRAMES):
        assert torch.allclose(
            found[row, :valid], expected[row, :valid], atol=1e-5
        )


def test_in_training_the_output_is_hugging_faces_with_its_dropout():
    reference, ours = _models(attention_dropout=0.5)
    reference.train(), ours.train()
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
    found.sum().backward()  # the graph is whole


def test_no_mask_and_a_mask_of_ones_give_the_same():
    _, ours = _models()
    ours.eval()
    hidden, _ = _padded_batch(ours.config.hidden_size, (5, 5))
    everything = torch.ones(2, 5, dtype=torch.bool)
    assert torch.equal(
        _encode(ours, hidden, None), _encode(ours, hidden, everything)
    )


def test_a_mask_with_holes_is_refused():
    _, ours = _models()
    ours.eval()
    hidden, mask = _padded_batch(ours.config.hidden_size)
    mask[0, 2] = False
    with pytest.raises(ValueError, match="leading ones"):
        ours.encoder.layers[0].attention(hidden, mask)
