"""Label-free pretraining of the tiny demo models."""

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel

from speechbrain_sercl.data.synthetic import unlabelled_utterances
from speechbrain_sercl.method import tiny
from speechbrain_sercl.method.pretraining import (
    FRAME,
    HOP,
    N_MELS,
    WINDOW,
    log_mel_targets,
    pretrain_on_synthetic_speech,
)
from speechbrain_sercl.method.sources import resolve_source
from speechbrain_sercl.method.tiny import TINY_MODELS


def small_model(seed=0):
    torch.manual_seed(seed)
    config = dict(
        TINY_MODELS["tiny-wavlm"], hidden_size=16, intermediate_size=32
    )
    return AutoModel.from_config(AutoConfig.for_model(**config))


def test_pretraining_learns_and_repeats_under_its_seed():
    kwargs = {"steps": 30, "utterances": 16, "seconds": 0.5, "batch_size": 8}
    losses = pretrain_on_synthetic_speech(
        small_model(), progress=False, **kwargs
    )
    again = pretrain_on_synthetic_speech(
        small_model(), progress=False, **kwargs
    )
    assert losses == again
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    state, numpy_state = torch.get_rng_state(), np.random.get_state()[1]
    pretrain_on_synthetic_speech(small_model(), progress=False, **kwargs)
    assert torch.equal(state, torch.get_rng_state())
    assert np.array_equal(numpy_state, np.random.get_state()[1])


def test_pretraining_depends_on_its_seed_not_on_the_global_state():
    kwargs = {"steps": 3, "utterances": 8, "seconds": 0.5, "batch_size": 4}
    results = []
    for global_seed in (1, 2):
        model = small_model()
        torch.manual_seed(global_seed)
        np.random.seed(global_seed)
        losses = pretrain_on_synthetic_speech(model, progress=False, **kwargs)
        results.append((losses, model.state_dict()))
    (first, first_state), (second, second_state) = results
    assert first == second
    for name, tensor in first_state.items():
        assert torch.equal(tensor, second_state[name]), name


def test_log_mel_targets_are_standardised_log_mel_frames():
    wavs = torch.from_numpy(unlabelled_utterances(3, 1.0, 16000, seed=1))
    targets = log_mel_targets(wavs).double()
    # As many frames as the base models' CNN gives (a receptive field of
    # FRAME samples every HOP), each a WINDOW centred on its frame.
    assert targets.shape == (3, (16000 - FRAME) // HOP + 1, N_MELS)
    flat = targets.reshape(-1, N_MELS)
    assert torch.allclose(
        flat.mean(0), torch.zeros(N_MELS, dtype=float), atol=1e-5
    )
    assert torch.allclose(
        flat.std(0), torch.ones(N_MELS, dtype=float), atol=1e-4
    )
    # A louder frame has more energy in its bands: the per-frame mean of
    # the targets follows the frame's log energy (independent formula).
    side = (WINDOW - FRAME) // 2
    padded = torch.cat([torch.zeros(3, side), wavs, torch.zeros(3, side)], 1)
    frames = padded.unfold(1, WINDOW, HOP)
    log_energy = torch.log((frames.double() ** 2).sum(-1) + 1e-9)
    correlation = np.corrcoef(
        log_energy.flatten().numpy(), targets.mean(-1).flatten().numpy()
    )[0, 1]
    assert correlation > 0.9


def test_unlabelled_speech_is_new_speech_each_time():
    first = unlabelled_utterances(4, 0.5, 16000, seed=0)
    assert np.array_equal(first, unlabelled_utterances(4, 0.5, 16000, seed=0))
    assert not np.array_equal(
        first, unlabelled_utterances(4, 0.5, 16000, seed=1)
    )
    assert len({row.tobytes() for row in first}) == 4


@pytest.mark.parametrize(
    "name, model_class, normalize, speech, steps",
    [
        ("tiny-wavlm-pretrained", "WavLMModel", False, ("synthetic",), 400),
        ("tiny-hubert-pretrained", "HubertModel", True, ("synthetic",), 400),
        (
            "tiny-wavlm-pretrained-mixture",
            "WavLMModel",
            False,
            ("synthetic", "espeak"),
            800,
        ),
        ("tiny-wavlm-pretrained-espeak", "WavLMModel", False, ("espeak",), 800),
    ],
)
def test_pretrained_tiny_models_are_built_once_in_the_cache(
    tmp_path, monkeypatch, name, model_class, normalize, speech, steps
):
    calls = []

    def fake_pretraining(model, normalize_wav, seed, speech, steps):
        calls.append(
            (
                type(model).__name__,
                model.config.hidden_size,
                model.config.intermediate_size,
                normalize_wav,
                seed,
                speech,
                steps,
            )
        )

    monkeypatch.setenv("SERCL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tiny, "pretrain_on_synthetic_speech", fake_pretraining)
    folder = resolve_source(name, tmp_path / "save")
    assert folder == str(
        tmp_path / "cache" / f"{name}-v{tiny.PRETRAINING_VERSION}"
    )
    assert resolve_source(name, tmp_path / "elsewhere") == folder
    # Twice the width of the random tiny models (32).
    assert calls == [(model_class, 64, 128, normalize, 0, speech, steps)]
    assert not (tmp_path / "save").exists()
