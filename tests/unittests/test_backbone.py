"""Tests for speechbrain_sercl.method.backbone (tiny WavLM and HuBERT, CPU
only)."""

import json
import os
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, Wav2Vec2FeatureExtractor

from speechbrain_sercl.method.backbone import (
    STAGES,
    SSLBackbone,
)
from speechbrain_sercl.method.sources import model_type_of, resolve_source
from speechbrain_sercl.method.tiny import TINY_MODELS, materialise_tiny_model


def trainable_parameter_names(module):
    """The sorted names of the parameters that require grad."""
    return sorted(
        name
        for name, parameter in module.named_parameters()
        if parameter.requires_grad
    )


def encoder_parameters(backbone):
    """The transformer encoder's parameters that require grad."""
    return [
        parameter
        for parameter in backbone.hf_model.encoder.parameters()
        if parameter.requires_grad
    ]


TINY_NAMES = ["tiny-wavlm", "tiny-hubert"]
SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def save_path(tmp_path_factory):
    """One folder of materialised tiny models shared by the module."""
    return str(tmp_path_factory.mktemp("ssl_models"))


def _frames(num_samples, config):
    """Frame count of the CNN: floor((n - kernel) / stride) + 1 per layer."""
    for kernel, stride in zip(
        config["conv_kernel"], config["conv_stride"], strict=True
    ):
        num_samples = (num_samples - kernel) // stride + 1
    return num_samples


def _save_model(folder, name, seed=1, do_normalize=True, **overrides):
    """Saves a random model with transformers only, no code under test."""
    config = AutoConfig.for_model(**{**TINY_MODELS[name], **overrides})
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        sampling_rate=SAMPLE_RATE, do_normalize=do_normalize
    ).save_pretrained(folder)
    return str(folder)


def _waves(batch=2, num_samples=SAMPLE_RATE, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, num_samples, generator=generator)


def test_tiny_models_are_small_wavlm_and_hubert():
    assert set(TINY_MODELS) == set(TINY_NAMES)
    for name, kind in zip(TINY_NAMES, ["wavlm", "hubert"], strict=True):
        config = TINY_MODELS[name]
        assert config["model_type"] == kind
        assert 32 <= config["hidden_size"] <= 64
        assert config["num_hidden_layers"] == 2
        assert config["num_attention_heads"] == 2


@pytest.mark.parametrize("name", TINY_NAMES)
def test_materialise_is_deterministic_per_seed(tmp_path, name):
    first = materialise_tiny_model(name, tmp_path / "a", seed=3)
    second = materialise_tiny_model(name, tmp_path / "b", seed=3)
    other = materialise_tiny_model(name, tmp_path / "c", seed=4)
    assert sorted(os.listdir(first)) == [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ]
    weights = [
        load_file(os.path.join(f, "model.safetensors"))
        for f in (first, second, other)
    ]
    assert weights[0].keys() == weights[1].keys() == weights[2].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(
        torch.equal(weights[0][k], weights[2][k]) for k in weights[0]
    )
    with open(os.path.join(first, "config.json")) as stream:
        saved = json.load(stream)
    assert saved["model_type"] == TINY_MODELS[name]["model_type"]
    assert saved["hidden_size"] == TINY_MODELS[name]["hidden_size"]


def test_materialise_leaves_global_rng_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    materialise_tiny_model("tiny-wavlm", tmp_path / "m")
    assert torch.equal(torch.rand(3), expected)


def test_materialise_skips_a_complete_folder(tmp_path):
    folder = materialise_tiny_model("tiny-wavlm", tmp_path / "m")
    weights = os.path.join(folder, "model.safetensors")
    before = os.stat(weights).st_mtime_ns
    assert materialise_tiny_model("tiny-wavlm", folder, seed=9) == folder
    assert os.stat(weights).st_mtime_ns == before


def test_materialise_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="config.json"):
        materialise_tiny_model("tiny-wavlm", tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_unknown_tiny_name_lists_known(tmp_path):
    with pytest.raises(
        ValueError, match="tiny-hubert, tiny-hubert-pretrained, tiny-wavlm, "
    ):
        materialise_tiny_model("tiny-conformer", tmp_path / "x")


def test_resolve_source_kinds(tmp_path, save_path):
    folder = resolve_source("tiny-wavlm", save_path)
    assert folder == os.path.join(save_path, "tiny-wavlm")
    assert resolve_source(folder, save_path) == folder
    for hub_id in ["microsoft/wavlm-base-plus", "facebook/hubert-base-ls960"]:
        assert resolve_source(hub_id, save_path) == hub_id
    with pytest.raises(ValueError, match="not a tiny model name"):
        resolve_source("wavlm", save_path)
    a_file = tmp_path / "weights.bin"
    a_file.write_bytes(b"")
    with pytest.raises(ValueError, match="is a file"):
        resolve_source(str(a_file), save_path)


@pytest.mark.parametrize(
    "removed, message",
    [
        ("config.json", "lacks: config.json"),
        ("preprocessor_config.json", "lacks: preprocessor_config.json"),
        ("model.safetensors", "lacks: model.safetensors or pytorch_model"),
    ],
)
def test_resolve_source_names_missing_files(tmp_path, removed, message):
    folder = _save_model(tmp_path / "model", "tiny-wavlm")
    os.remove(os.path.join(folder, removed))
    with pytest.raises(FileNotFoundError, match=message) as error:
        resolve_source(folder, str(tmp_path))
    assert folder in str(error.value)


def test_resolve_source_accepts_pytorch_bin(tmp_path):
    folder = _save_model(tmp_path / "model", "tiny-wavlm")
    os.rename(
        os.path.join(folder, "model.safetensors"),
        os.path.join(folder, "pytorch_model.bin"),
    )
    assert resolve_source(folder, str(tmp_path)) == folder


def test_model_type_of(tmp_path, save_path):
    assert model_type_of(resolve_source("tiny-hubert", save_path)) == "hubert"
    assert model_type_of(resolve_source("tiny-wavlm", save_path)) == "wavlm"
    assert model_type_of("microsoft/wavlm-base-plus") == "wavlm"
    assert model_type_of("facebook/hubert-base-ls960") == "hubert"
    with pytest.raises(ValueError, match="pass model_type"):
        model_type_of("facebook/wav2vec2-base")
    (tmp_path / "config.json").write_text('{"model_type": "wav2vec2"}')
    with pytest.raises(ValueError, match="'wav2vec2'"):
        model_type_of(tmp_path)


def test_model_type_mismatch_is_an_error(save_path):
    with pytest.raises(ValueError, match="is a 'wavlm'"):
        SSLBackbone("tiny-wavlm", save_path, model_type="hubert")


def test_unknown_stage_is_an_error(save_path):
    with pytest.raises(ValueError, match="contrastive, finetune, classifier"):
        SSLBackbone("tiny-wavlm", save_path, stage="pretrain")


@pytest.mark.parametrize("name", TINY_NAMES)
@pytest.mark.parametrize("stage", ["contrastive", "finetune"])
def test_only_the_encoder_trains(save_path, name, stage):
    backbone = SSLBackbone(name, save_path, stage=stage)
    reference = AutoModel.from_pretrained(resolve_source(name, save_path))
    expected = sorted(
        "lobe.model." + n
        for n, _ in reference.named_parameters()
        if n.startswith("encoder.")
    )
    all_names = [n for n, _ in reference.named_parameters()]
    assert "masked_spec_embed" in all_names
    assert any(n.startswith("feature_projection.") for n in all_names)
    assert trainable_parameter_names(backbone) == expected
    by_id = {id(p): n for n, p in backbone.named_parameters()}
    assert sorted(by_id[id(p)] for p in encoder_parameters(backbone)) == (
        expected
    )


@pytest.mark.parametrize("name", TINY_NAMES)
@pytest.mark.parametrize("stage", ["contrastive", "finetune", "classifier"])
def test_a_random_front_end_trains_when_asked(save_path, name, stage):
    """train_front_end adds the CNN and the projection, never the masked
    spec embedding, and the classifier stage stays frozen."""
    backbone = SSLBackbone(name, save_path, stage=stage, train_front_end=True)
    reference = AutoModel.from_pretrained(resolve_source(name, save_path))
    parts = ("encoder.", "feature_extractor.", "feature_projection.")
    expected = sorted(
        "lobe.model." + n
        for n, _ in reference.named_parameters()
        if n.startswith(parts) and stage != "classifier"
    )
    assert trainable_parameter_names(backbone) == expected
    if stage != "classifier":
        hidden = backbone(_waves(), torch.tensor([1.0, 0.7]))
        hidden.sum().backward()
        cnn = backbone.hf_model.feature_extractor.conv_layers[0].conv.weight
        assert cnn.grad is not None and cnn.grad.abs().sum() > 0


@pytest.mark.parametrize("name", TINY_NAMES)
def test_classifier_stage_is_frozen_and_deterministic(save_path, name):
    backbone = SSLBackbone(name, save_path, stage="classifier")
    parent = torch.nn.ModuleDict(
        {"ssl": backbone, "head": torch.nn.Linear(2, 2)}
    )
    parent.train()
    assert trainable_parameter_names(backbone) == []
    assert encoder_parameters(backbone) == []
    assert parent["head"].training
    assert not any(m.training for m in backbone.modules())
    wavs = _waves()
    first = backbone(wavs, torch.tensor([1.0, 0.7]))
    second = backbone(wavs, torch.tensor([1.0, 0.7]))
    assert torch.equal(first, second)
    assert not first.requires_grad


@pytest.mark.parametrize("name", TINY_NAMES)
def test_contrastive_train_mode_is_stochastic_but_cnn_builds_no_graph(
    save_path, name
):
    backbone = SSLBackbone(name, save_path, stage="contrastive")
    backbone.train()
    seen = {}

    def record(module_name):
        def hook(module, inputs, output):
            output = output[0] if isinstance(output, tuple) else output
            seen[module_name] = output.requires_grad

        return hook

    model = backbone.hf_model
    model.feature_extractor.register_forward_hook(record("cnn"))
    model.feature_projection.register_forward_hook(record("projection"))
    wavs = _waves()
    first = backbone(wavs)
    second = backbone(wavs)
    assert not torch.equal(first, second)
    assert seen == {"cnn": False, "projection": False}
    assert first.requires_grad
    first.sum().backward()
    assert all(p.grad is None for p in model.feature_extractor.parameters())
    assert all(p.grad is not None for p in encoder_parameters(backbone))


@pytest.mark.parametrize("name", TINY_NAMES)
def test_set_stage_switches_the_policy(save_path, name):
    backbone = SSLBackbone(name, save_path, stage="classifier")
    backbone.set_stage("finetune")
    backbone.train()
    assert backbone.stage == "finetune"
    assert backbone.training and backbone.hf_model.training
    trainable = trainable_parameter_names(backbone)
    assert trainable and all(
        n.startswith("lobe.model.encoder.") for n in trainable
    )
    backbone.set_stage("classifier")
    assert not backbone.training
    assert backbone.stage in STAGES


@pytest.mark.parametrize("name", TINY_NAMES)
def test_output_shapes(save_path, name):
    backbone = SSLBackbone(name, save_path, stage="classifier")
    config = TINY_MODELS[name]
    wavs = _waves(batch=3, num_samples=12000)
    hidden = backbone(wavs, torch.tensor([1.0, 0.8, 0.5]))
    frames = _frames(12000, config)
    assert hidden.shape == (3, frames, config["hidden_size"])
    # Frames of the whole padded row, even when no utterance fills it.
    shorter = backbone(wavs, torch.tensor([0.9, 0.8, 0.5]))
    assert shorter.shape == hidden.shape
    assert backbone.hidden_size == config["hidden_size"]
    assert backbone.num_layers == config["num_hidden_layers"]
    with pytest.raises(ValueError, match=r"got shape \(12000,\)"):
        backbone(wavs[0])


@pytest.mark.parametrize("name", TINY_NAMES)
def test_all_hiddens_stack_every_layer(save_path, name):
    last = SSLBackbone(name, save_path, stage="classifier")
    every = SSLBackbone(
        name, save_path, stage="classifier", output_all_hiddens=True
    )
    config = TINY_MODELS[name]
    wavs = _waves()
    hiddens = every(wavs)
    frames = _frames(SAMPLE_RATE, config)
    layers = config["num_hidden_layers"] + 1
    assert hiddens.shape == (layers, 2, frames, config["hidden_size"])
    # Post-norm (base) models: the last entry is the last layer's output.
    torch.testing.assert_close(hiddens[-1], last(wavs))


@pytest.mark.parametrize("name", TINY_NAMES)
@pytest.mark.parametrize("stable_layer_norm", [False, True])
def test_all_hiddens_match_transformers(tmp_path, name, stable_layer_norm):
    folder = _save_model(
        tmp_path / "m",
        name,
        do_normalize=False,
        feat_extract_norm="layer" if stable_layer_norm else "group",
        do_stable_layer_norm=stable_layer_norm,
    )
    backbone = SSLBackbone(
        folder, str(tmp_path), stage="classifier", output_all_hiddens=True
    )
    reference = AutoModel.from_pretrained(folder).eval()
    wavs = _waves()
    with torch.no_grad():
        expected = reference(wavs, output_hidden_states=True).hidden_states
    torch.testing.assert_close(
        backbone(wavs), torch.stack(expected), rtol=1e-4, atol=1e-4
    )


def test_too_short_an_utterance_is_named(save_path):
    backbone = SSLBackbone("tiny-wavlm", save_path, stage="classifier")
    wavs = _waves(num_samples=1000)
    with pytest.raises(ValueError, match="utterance 1 has 100 valid samples"):
        backbone(wavs, torch.tensor([1.0, 0.1]))


def test_all_hiddens_refuse_a_dropped_layer(tmp_path):
    folder = _save_model(tmp_path / "m", "tiny-wavlm", layerdrop=1.0)
    backbone = SSLBackbone(folder, str(tmp_path), output_all_hiddens=True)
    backbone.train()
    with pytest.raises(RuntimeError, match="layer drop"):
        backbone(_waves())
    backbone.eval()
    assert backbone(_waves()).shape[0] == 3


@pytest.mark.parametrize("name", TINY_NAMES)
@pytest.mark.parametrize("do_normalize", [False, True])
def test_local_folder_matches_transformers(tmp_path, name, do_normalize):
    folder = _save_model(tmp_path / "m", name, do_normalize=do_normalize)
    backbone = SSLBackbone(folder, str(tmp_path), stage="classifier")
    reference = AutoModel.from_pretrained(folder).eval()
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(folder)
    wavs = _waves()
    inputs = extractor(
        list(wavs.numpy()), sampling_rate=SAMPLE_RATE, return_tensors="pt"
    )
    with torch.no_grad():
        expected = reference(inputs.input_values).last_hidden_state
    torch.testing.assert_close(backbone(wavs), expected, rtol=1e-4, atol=1e-4)


def _padded_pair(long=SAMPLE_RATE, short=9600):
    """A batch of two utterances, the second zero-padded."""
    wavs = _waves(num_samples=long)
    wavs[1, short:] = 0.0
    return wavs, torch.tensor([1.0, short / long]), wavs[1:, :short]


@pytest.mark.parametrize("name", TINY_NAMES)
@pytest.mark.parametrize(
    "layout",
    [
        # Large models: LayerNorm CNN, pre-norm transformer.
        {"feat_extract_norm": "layer", "do_stable_layer_norm": True},
        # Base models (as the tiny ones): GroupNorm over time in the first
        # convolution. This case once asserted that padding shifted the
        # valid frames; the CNN now runs on each utterance alone (see
        # test_batch_independence.py for mixed-length batches).
        {"feat_extract_norm": "group", "do_stable_layer_norm": False},
    ],
    ids=["layer-norm-cnn", "group-norm-cnn"],
)
def test_padding_is_invisible(tmp_path, name, layout):
    folder = _save_model(tmp_path / "m", name, do_normalize=True, **layout)
    backbone = SSLBackbone(folder, str(tmp_path), stage="classifier")
    wavs, lens, single = _padded_pair()
    valid = _frames(single.shape[1], TINY_MODELS[name])
    batched = backbone(wavs, lens)[1, :valid]
    alone = backbone(single)[0]
    assert alone.shape[0] == valid
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-4)


def test_valid_sample_normalisation_matches_feature_extractor(tmp_path):
    folder = _save_model(
        tmp_path / "m", "tiny-hubert", feat_extract_norm="layer"
    )
    backbone = SSLBackbone(folder, str(tmp_path), stage="classifier")
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(folder)
    seen = []
    backbone.hf_model.feature_extractor.register_forward_pre_hook(
        lambda module, args: seen.append(args[0])
    )
    wavs, lens, single = _padded_pair()
    backbone(wavs, lens)
    inputs = extractor(
        [wavs[0].numpy(), single[0].numpy()],
        sampling_rate=SAMPLE_RATE,
        padding=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    # The CNN gets each utterance's valid samples, one at a time.
    assert [tuple(w.shape) for w in seen] == [(1, wavs.shape[1]), single.shape]
    for wav, expected in zip(seen, inputs.input_values, strict=True):
        np.testing.assert_allclose(
            wav[0].numpy(), expected[: wav.shape[1]].numpy(), atol=1e-4
        )


def test_spec_augment_is_configurable(tmp_path):
    no_dropout = {
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "feat_proj_dropout": 0.0,
        "activation_dropout": 0.0,
        "mask_time_prob": 0.5,
    }
    folder = _save_model(tmp_path / "m", "tiny-wavlm", **no_dropout)
    wavs = _waves()
    for apply_spec_augment in (True, False):
        backbone = SSLBackbone(
            folder, str(tmp_path), apply_spec_augment=apply_spec_augment
        )
        assert backbone.hf_model.config.apply_spec_augment is apply_spec_augment
        with torch.no_grad():
            train_out = backbone.train()(wavs)
            eval_out = backbone.eval()(wavs)
        # Training runs the batch at once, evaluation on a CPU each
        # utterance alone: the same up to float rounding without masking.
        same = torch.allclose(train_out, eval_out, atol=1e-5)
        assert same is not apply_spec_augment


@pytest.mark.parametrize("name", TINY_NAMES)
def test_gradient_checkpointing_gives_the_same_gradients(save_path, name):
    gradients = []
    for checkpointing in (False, True):
        backbone = SSLBackbone(
            name,
            save_path,
            gradient_checkpointing=checkpointing,
            apply_spec_augment=False,
        )
        assert backbone.hf_model.encoder.layers[0].gradient_checkpointing is (
            checkpointing
        )
        backbone.train()
        torch.manual_seed(0)
        backbone(_waves()).pow(2).mean().backward()
        gradients.append([p.grad for p in encoder_parameters(backbone)])
    assert len(gradients[0]) == len(gradients[1]) > 0
    for plain, checkpointed in zip(*gradients, strict=True):
        torch.testing.assert_close(checkpointed, plain)


@pytest.mark.parametrize("name", TINY_NAMES)
@pytest.mark.parametrize("stage", ["classifier", "finetune"])
def test_a_padded_batch_warns_nothing(save_path, name, stage):
    # WavLM's attention used to mix a boolean padding mask with its float
    # position bias, which PyTorch warns is deprecated, once per layer.
    backbone = SSLBackbone(name, save_path, stage=stage).train()
    wavs = torch.randn(3, SAMPLE_RATE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backbone(wavs, torch.tensor([1.0, 0.5, 0.75]))
