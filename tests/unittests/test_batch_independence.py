"""An utterance's outputs do not depend on the other utterances of a batch.

The base models (and the tiny ones) have a group-norm CNN: its first layer
normalises each channel over the whole row it is given, padding included.
The speech model must give an utterance padded into a mixed-length batch
the hidden states, pooled embedding and emotion probabilities it gets
alone.

Tolerance: 1e-5, absolute, in float32. The batched and the single pass do
the same maths, but reductions (the waveform normalisation, the attention
softmax and its matrix products, the layer norms) run over rows of other
lengths, so float32 sums are grouped differently: a few units in the last
place (1e-7 on values of order 1) per operation, measured at most 1.1e-6
here (hidden states; 2.4e-7 on embeddings, 3e-8 on probabilities). The
padding effect this guards against is about 1 on hidden states, 0.3 on
embeddings and 0.005 to 0.01 on probabilities (measured on the batched
CNN this replaced).
"""

import json
import os

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.method.embedding import EmotionEmbedding
from speechbrain_sercl.method.head import EmotionClassifier
from speechbrain_sercl.method.pooling import AttentionPooling
from speechbrain_sercl.method.tiny import TINY_MODELS, materialise_tiny_model

TINY_NAMES = ["tiny-wavlm", "tiny-hubert"]
SAMPLE_RATE = 16000
TOLERANCE = 1e-5
# 0.3 s, 1.2 s and 2.0 s are whole multiples of the CNN's stride (320
# samples); the test at the end takes a length that is not (0.27 s), where
# relative waveform lengths would count one padded frame: the pooling gets
# the backbone's frame lengths.
SECONDS = (0.3, 2.0, 1.2)
NO_DROPOUT = {
    "hidden_dropout": 0.0,
    "attention_dropout": 0.0,
    "feat_proj_dropout": 0.0,
    "activation_dropout": 0.0,
}


@pytest.fixture(scope="module")
def save_path(tmp_path_factory):
    """One folder of materialised tiny models shared by the module."""
    return str(tmp_path_factory.mktemp("ssl_models"))


def _mixed_batch(seconds=SECONDS, seed=0):
    """Utterances of the given durations, alone and zero-padded together."""
    generator = torch.Generator().manual_seed(seed)
    utterances = [
        torch.randn(round(s * SAMPLE_RATE), generator=generator)
        for s in seconds
    ]
    lengths = torch.tensor([len(u) for u in utterances])
    wavs = pad_sequence(utterances, batch_first=True)
    return utterances, wavs, lengths / lengths.max()


def _head(hidden_size, seed=0):
    """Attention pooling and a 4-emotion classifier, seeded, in eval."""
    torch.manual_seed(seed)
    pooling = AttentionPooling(hidden_size)
    classifier = EmotionClassifier(hidden_size, n_classes=4, hidden_size=16)
    return pooling.eval(), classifier.eval()


def _outputs(backbone, head, wavs, wav_lens):
    """Hidden states, pooled embeddings and emotion probabilities.

    The embeddings come from the exported ``embedding_model``
    (:class:`EmotionEmbedding`, the path every Brain takes too), given the
    waveforms and their relative lengths as ``EncoderClassifier`` gives
    them.
    """
    pooling, classifier = head
    with torch.no_grad():
        hidden = backbone(wavs, wav_lens)
        embeddings = EmotionEmbedding(backbone, pooling)(wavs, wav_lens)[:, 0]
        probabilities = classifier(embeddings).exp()
    return hidden, embeddings, probabilities


def _max_difference_to_alone(backbone, seconds=SECONDS):
    """Largest gap between batched and single outputs, and the frames."""
    head = _head(backbone.hidden_size)
    utterances, wavs, wav_lens = _mixed_batch(seconds)
    batched = _outputs(backbone, head, wavs, wav_lens)
    largest, frames = 0.0, []
    for row, utterance in enumerate(utterances):
        alone = _outputs(backbone, head, utterance[None], torch.ones(1))
        valid = alone[0].shape[1]
        frames.append(valid)
        pairs = [
            (batched[0][row, :valid], alone[0][0]),
            (batched[1][row], alone[1][0]),
            (batched[2][row], alone[2][0]),
        ]
        for together, single in pairs:
            gap = (together - single).abs().max().item()
            largest = max(largest, gap)
    return largest, frames, batched[0].shape[1], wav_lens


@pytest.mark.parametrize("name", TINY_NAMES)
def test_tiny_models_have_the_base_models_group_norm_cnn(save_path, name):
    assert TINY_MODELS[name]["feat_extract_norm"] == "group"
    backbone = SSLBackbone(name, save_path, stage="classifier")
    first, *others = backbone.hf_model.feature_extractor.conv_layers
    assert isinstance(first.layer_norm, torch.nn.GroupNorm)
    assert not any(hasattr(layer, "layer_norm") for layer in others)


@pytest.mark.parametrize("name", TINY_NAMES)
def test_batch_mates_change_no_output_in_eval(save_path, name):
    backbone = SSLBackbone(name, save_path, stage="classifier")
    largest, frames, total, wav_lens = _max_difference_to_alone(backbone)
    # The pooling reads relative lengths: they must count the same frames.
    assert torch.round(wav_lens * total).long().tolist() == frames
    assert largest <= TOLERANCE, f"max |batched - alone| = {largest:.3g}"


def _deterministic_trainable(folder, name):
    """A tiny model in training mode with dropout and masking off."""
    path = materialise_tiny_model(name, folder / name)
    config_file = os.path.join(path, "config.json")
    with open(config_file, encoding="utf-8") as stream:
        config = json.load(stream)
    with open(config_file, "w", encoding="utf-8") as stream:
        json.dump({**config, **NO_DROPOUT}, stream)
    return SSLBackbone(
        path, str(folder), stage="finetune", apply_spec_augment=False
    ).train()


@pytest.mark.parametrize("name", TINY_NAMES)
def test_batch_mates_change_no_output_in_training_mode(tmp_path, name):
    # Training takes the batched path: with dropout and masking off the
    # trainable stages are deterministic and must match too.
    backbone = _deterministic_trainable(tmp_path, name)
    largest, *_ = _max_difference_to_alone(backbone)
    assert largest <= TOLERANCE, f"max |batched - alone| = {largest:.3g}"


@pytest.mark.parametrize("name", TINY_NAMES)
def test_batch_mates_change_no_output_at_any_length(save_path, name):
    backbone = SSLBackbone(name, save_path, stage="classifier")
    largest, *_ = _max_difference_to_alone(backbone, (0.27, 2.0, 1.2))
    assert largest <= TOLERANCE, f"max |batched - alone| = {largest:.3g}"


@pytest.mark.parametrize("name", TINY_NAMES)
def test_utterances_of_one_length_share_a_cnn_call(tmp_path, name):
    # The batched path (training, or a GPU) gives utterances of the same
    # valid length one CNN call, each row still its own utterance's.
    backbone = _deterministic_trainable(tmp_path, name)
    seconds = (2.0, 1.2, 2.0, 0.3, 1.2)
    largest, *_ = _max_difference_to_alone(backbone, seconds)
    assert largest <= TOLERANCE, f"max |batched - alone| = {largest:.3g}"
    calls = []
    backbone.hf_model.feature_extractor.register_forward_hook(
        lambda module, args, output: calls.append(args[0].shape[0])
    )
    _, wavs, wav_lens = _mixed_batch(seconds)
    with torch.no_grad():
        backbone(wavs, wav_lens)
    assert calls == [2, 2, 1]  # 2 x 2.0 s, 2 x 1.2 s, 0.3 s


@pytest.mark.parametrize("name", TINY_NAMES)
@pytest.mark.parametrize("all_hiddens", [False, True])
def test_on_the_cpu_in_eval_each_utterance_runs_alone(
    save_path, name, all_hiddens
):
    # Outside training on a CPU the model runs on each utterance alone:
    # its hidden states are those it gets alone, bit for bit, zeros after.
    backbone = SSLBackbone(
        name, save_path, stage="classifier", output_all_hiddens=all_hiddens
    )
    utterances, wavs, wav_lens = _mixed_batch((0.27, 2.0, 1.2, 2.0))
    with torch.no_grad():
        batched = backbone(wavs, wav_lens)
        for row, utterance in enumerate(utterances):
            alone = backbone(utterance[None])
            valid = alone.shape[-2]
            assert torch.equal(
                batched[..., row, :valid, :], alone[..., 0, :, :]
            )
            assert not batched[..., row, valid:, :].any()
