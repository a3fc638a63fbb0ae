"""The stage-2 feature cache: what it stores, when it recomputes, how
training crops map onto its frames, and that stage 2 predicts the same
from it as from the audio.

The reference for every cached entry is the speech model run here on the
audio (``SSLBackbone`` on ``load_audio``), rounded to float16; frame counts
are checked against the CNN itself and Hugging Face's own formula.
"""

import functools
import os

import numpy as np
import pytest
import soundfile
import torch
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain.utils.train_logger import FileTrainLogger
from transformers import WavLMConfig, WavLMModel

from speechbrain_sercl.data.audio import load_audio
from speechbrain_sercl.data.pipeline import (
    EpochCrop,
    make_dataset,
    make_label_encoder,
)
from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.method.brains import ClassifierBrain
from speechbrain_sercl.method.feature_cache import (
    CachedFeatures,
    FeatureCacheError,
    build_cache,
    entry_key,
)
from speechbrain_sercl.method.head import EmotionClassifier
from speechbrain_sercl.method.pooling import AttentionPooling
from speechbrain_sercl.method.schedulers import MultiStepScheduler

SAMPLE_RATE = 16000
# id -> (emotion, seconds): 3 classes, lengths around and above the crop.
UTTERANCES = {
    "u0": ("sad", 0.50),
    "u1": ("angry", 1.70),
    "u2": ("happy", 0.75),
    "u3": ("sad", 1.25),
    "u4": ("angry", 0.40),
    "u5": ("happy", 2.30),
}
CROP_SECONDS = 1.0
# Largest |p_cache - p_audio| over the test probabilities: measured
# 8.4e-5 (stage 2 trained two epochs from the cache, tiny WavLM, classifier
# scaled so that the probabilities spread over (0, 1)); float16 keeps
# about 3 significant digits of each hidden state. Bound: about 6 times it.
SAME_PREDICTIONS_TOLERANCE = 5e-4


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    entries = {}
    for index, (utt_id, (emotion, seconds)) in enumerate(UTTERANCES.items()):
        wav = folder / f"{utt_id}.wav"
        samples = 0.3 * rng.standard_normal(int(seconds * SAMPLE_RATE))
        soundfile.write(wav, samples, SAMPLE_RATE, subtype="FLOAT")
        entries[utt_id] = {
            "wav": str(wav),
            "emotion": emotion,
            "corpus": "corp",
            "speaker": f"s{index % 2}",
        }
    return entries


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("ssl")


def frozen_model(model_folder, name="tiny-wavlm"):
    return SSLBackbone(name, model_folder, stage="classifier")


def model_output(ssl, wav, max_seconds=None):
    """The reference: the model run here on the whole audio."""
    waveform = load_audio(wav, max_seconds=max_seconds)
    with torch.no_grad():
        return ssl(waveform[None])[0]


class CallCounter:
    """Counts the speech model's forward calls."""

    def __init__(self, ssl):
        self.calls = 0
        ssl.register_forward_hook(self.count)

    def count(self, module, args, output):
        self.calls += 1


def wavs_of(manifest):
    return [entry["wav"] for entry in manifest.values()]


def test_entries_are_the_models_output_in_float16(manifest, model_folder):
    ssl = frozen_model(model_folder)
    features = build_cache(
        model_folder / "cache", ssl, wavs_of(manifest), progressbar=False
    )
    for entry in manifest.values():
        cached = features.read(entry["wav"])
        expected = model_output(ssl, entry["wav"]).half()
        assert cached.dtype == torch.float16
        assert torch.equal(cached, expected), entry["wav"]


def test_a_second_build_computes_nothing(manifest, model_folder, tmp_path):
    ssl = frozen_model(model_folder)
    counter = CallCounter(ssl)
    build_cache(tmp_path, ssl, wavs_of(manifest), progressbar=False)
    assert counter.calls == len(manifest)
    build_cache(tmp_path, ssl, wavs_of(manifest), progressbar=False)
    assert counter.calls == len(manifest)


def test_an_interrupted_build_ends_with_the_same_entries(
    manifest, model_folder, tmp_path
):
    ssl = frozen_model(model_folder)
    wavs = wavs_of(manifest)
    whole = build_cache(tmp_path / "whole", ssl, wavs, progressbar=False)
    # A build that stopped after two entries, then the full build.
    build_cache(tmp_path / "parts", ssl, wavs[:2], progressbar=False)
    parts = build_cache(tmp_path / "parts", ssl, wavs, progressbar=False)
    for wav in wavs:
        assert torch.equal(parts.read(wav), whole.read(wav))


def test_changed_weights_give_other_entries(manifest, model_folder, tmp_path):
    ssl = frozen_model(model_folder)
    wav = manifest["u1"]["wav"]
    before = build_cache(tmp_path, ssl, [wav], progressbar=False)
    with torch.no_grad():
        ssl.hf_model.encoder.layers[1].final_layer_norm.bias.add_(0.5)
    after = build_cache(tmp_path, ssl, [wav], progressbar=False)
    assert after.folder != before.folder and after.path(wav) != before.path(wav)
    assert torch.equal(after.read(wav), model_output(ssl, wav).half())
    assert not torch.equal(after.read(wav), before.read(wav))


def test_another_model_config_gives_other_entries(
    manifest, model_folder, tmp_path
):
    """tiny-wavlm and tiny-hubert share their weights' names and shapes
    but not their configuration (HuBERT normalises the waveform)."""
    wav = manifest["u1"]["wav"]
    wavlm = frozen_model(model_folder, "tiny-wavlm")
    hubert = frozen_model(model_folder, "tiny-hubert")
    for_wavlm = build_cache(tmp_path, wavlm, [wav], progressbar=False)
    for_hubert = build_cache(tmp_path, hubert, [wav], progressbar=False)
    assert for_hubert.path(wav) != for_wavlm.path(wav)
    assert torch.equal(for_hubert.read(wav), model_output(hubert, wav).half())


def test_changed_audio_is_computed_again(model_folder, tmp_path):
    ssl = frozen_model(model_folder)
    counter = CallCounter(ssl)
    wav = tmp_path / "a.wav"
    soundfile.write(wav, 0.1 * np.ones(16000), SAMPLE_RATE, subtype="FLOAT")
    first = build_cache(tmp_path / "cache", ssl, [wav], progressbar=False)
    old_path, old = first.path(wav), first.read(wav)
    # Same size, other samples, other modification time.
    soundfile.write(wav, -0.1 * np.ones(16000), SAMPLE_RATE, subtype="FLOAT")
    os.utime(wav, ns=(0, 10**9))
    second = build_cache(tmp_path / "cache", ssl, [wav], progressbar=False)
    assert counter.calls == 2
    assert second.path(wav) != old_path
    assert torch.equal(second.read(wav), model_output(ssl, wav).half())
    assert not torch.equal(second.read(wav), old)


def test_every_part_of_the_key_changes_it(tmp_path):
    wav = tmp_path / "a.wav"
    soundfile.write(wav, np.zeros(1600), SAMPLE_RATE)
    base = entry_key("model", wav)
    copy = tmp_path / "b.wav"
    copy.write_bytes(wav.read_bytes())
    os.utime(copy, ns=(os.stat(wav).st_atime_ns, os.stat(wav).st_mtime_ns))
    stat = os.stat(wav)
    variants = {
        "model": entry_key("other model", wav),
        "sample rate": entry_key("model", wav, sample_rate=8000),
        "max_seconds": entry_key("model", wav, max_seconds=0.05),
        "path": entry_key("model", copy),
    }
    with open(wav, "ab") as audio:  # size
        audio.write(b"\0")
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    variants["size"] = entry_key("model", wav)
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    variants["mtime"] = entry_key("model", wav)
    for part, key in variants.items():
        assert key != base, part
    assert len(set(variants.values())) == len(variants)


def test_max_seconds_entries_are_the_truncated_audios(manifest, model_folder):
    ssl = frozen_model(model_folder)
    wav = manifest["u5"]["wav"]
    features = build_cache(
        model_folder / "cache", ssl, [wav], max_seconds=1.0, progressbar=False
    )
    expected = model_output(ssl, wav, max_seconds=1.0).half()
    assert torch.equal(features.read(wav), expected)
    assert features.read(wav).shape[0] == 50  # 1 s at 20 ms per frame


def test_a_corrupt_entry_is_named_when_read_and_rebuilt_by_a_build(
    manifest, model_folder, tmp_path
):
    ssl = frozen_model(model_folder)
    wav = manifest["u0"]["wav"]
    features = build_cache(tmp_path, ssl, [wav], progressbar=False)
    path = features.path(wav)
    good = open(path, "rb").read()
    with open(path, "wb") as entry:
        entry.write(good[: len(good) // 2])
    with pytest.raises(FeatureCacheError, match="corrupt") as error:
        features.read(wav)
    assert path in str(error.value) and wav in str(error.value)
    build_cache(tmp_path, ssl, [wav], progressbar=False)
    assert torch.equal(features.read(wav), model_output(ssl, wav).half())


def test_an_entry_of_another_utterance_is_refused(
    manifest, model_folder, tmp_path
):
    ssl = frozen_model(model_folder)
    first, second = manifest["u0"]["wav"], manifest["u2"]["wav"]
    features = build_cache(tmp_path, ssl, [first, second], progressbar=False)
    os.replace(features.path(first), features.path(second))
    with pytest.raises(FeatureCacheError, match="not this entry") as error:
        features.read(second)
    assert features.path(second) in str(error.value)
    with pytest.raises(FeatureCacheError, match="no such") as error:
        features.read(first)


def test_a_trained_model_cannot_be_cached(model_folder, tmp_path):
    ssl = SSLBackbone("tiny-wavlm", model_folder, stage="finetune")
    with pytest.raises(ValueError, match="frozen"):
        build_cache(tmp_path, ssl, [], progressbar=False)


@pytest.fixture(scope="module")
def base_cnn():
    """A WavLM with the base models' CNN (7 convolutions) and a token
    transformer."""
    config = WavLMConfig(
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        num_conv_pos_embedding_groups=1,
    )
    return WavLMModel(config)


@pytest.mark.parametrize("seconds", [0.03, 0.5, 1.0, 1.234, 6.0])
def test_crop_frames_are_the_cnns_frames_of_that_many_samples(
    model_folder, base_cnn, tmp_path, seconds
):
    ssl = frozen_model(model_folder)
    features = build_cache(tmp_path, ssl, [], progressbar=False)
    samples = round(seconds * SAMPLE_RATE)
    with torch.no_grad():
        made = ssl.hf_model.feature_extractor(torch.zeros(1, samples))
    assert features.frames(seconds) == made.shape[-1]
    # The base models' CNN, by Hugging Face's own formula.
    base = CachedFeatures("unused", "unused", base_cnn.config)
    expected = base_cnn._get_feat_extract_output_lengths(samples)
    assert base.frames(seconds) == int(expected)


def test_training_crops_are_windows_of_the_cached_frames(
    manifest, model_folder
):
    ssl = frozen_model(model_folder)
    features = build_cache(
        model_folder / "cache", ssl, wavs_of(manifest), progressbar=False
    )
    crop = EpochCrop(CROP_SECONDS, seed=5)
    dataset = make_dataset(
        manifest, list(manifest), crop=crop, features=features
    )
    length = features.frames(CROP_SECONDS)
    by_epoch = []
    for epoch in (1, 2, 3):
        crop.set_epoch(epoch)
        items = {item["id"]: item["hidden"] for item in dataset}
        again = {item["id"]: item["hidden"] for item in dataset}
        for utt, hidden in items.items():
            whole = features.read(manifest[utt]["wav"])
            assert torch.equal(hidden, again[utt])  # deterministic
            if whole.shape[0] <= length:
                assert torch.equal(hidden, whole)
                continue
            assert hidden.shape[0] == length
            starts = [
                start
                for start in range(whole.shape[0] - length + 1)
                if torch.equal(whole[start : start + length], hidden)
            ]
            assert len(starts) == 1, utt
        by_epoch.append(items)
    # The long utterances' windows move from epoch to epoch.
    for utt in ("u1", "u5"):
        windows = [items[utt] for items in by_epoch]
        assert not all(torch.equal(windows[0], w) for w in windows[1:])


def test_cached_datasets_keep_their_max_seconds(manifest, model_folder):
    ssl = frozen_model(model_folder)
    features = build_cache(
        model_folder / "cache", ssl, wavs_of(manifest), progressbar=False
    )
    with pytest.raises(ValueError, match="max_seconds"):
        make_dataset(manifest, ["u0"], max_seconds=2.0, features=features)


def stage2_brain(manifest, model_folder, output_folder):
    torch.manual_seed(3)
    encoder = make_label_encoder(e["emotion"] for e in manifest.values())
    ssl = frozen_model(model_folder)
    classifier = EmotionClassifier(ssl.hidden_size, len(encoder), 32)
    with torch.no_grad():  # spread the probabilities over (0, 1)
        classifier.layers[2].weight.mul_(10)
    modules = {
        "ssl": ssl,
        "pooling": AttentionPooling(ssl.hidden_size),
        "classifier": classifier,
    }
    hparams = {
        "lr_schedule": MultiStepScheduler(1e-2, milestones=[5], factor=0.5),
        "lr_scales": {},
        "train_logger": FileTrainLogger(output_folder / "train_log.txt"),
        "epoch_counter": EpochCounter(limit=2),
        "label_encoder": encoder,
        "output_folder": str(output_folder),
        "train_crop": EpochCrop(CROP_SECONDS, seed=1),
        "use_feature_cache": True,
        "feature_cache_folder": str(output_folder / "cache"),
    }
    return ClassifierBrain(
        modules=modules,
        opt_class=functools.partial(torch.optim.Adam, lr=1e-2),
        hparams=hparams,
        run_opts={"device": "cpu", "noprogressbar": True},
    )


def test_stage2_predicts_the_same_from_the_cache(
    manifest, model_folder, tmp_path
):
    """Trained two epochs from the cache, then tested from the cache and
    from the audio: the same probabilities within the float16 tolerance."""
    brain = stage2_brain(manifest, model_folder, tmp_path)
    ids = list(manifest)
    encoder = brain.hparams.label_encoder
    brain.fit(
        brain.hparams.epoch_counter,
        make_dataset(
            manifest,
            ids,
            crop=brain.hparams.train_crop,
            label_encoder=encoder,
            features=brain.cached_features(manifest, ids),
        ),
        train_loader_kwargs={"batch_size": 3},
        progressbar=False,
    )
    probabilities = {}
    for cached in (True, False):
        features = brain.cached_features(manifest, ids) if cached else None
        test = make_dataset(
            manifest, ids, label_encoder=encoder, features=features
        )
        brain.evaluate(
            test, test_loader_kwargs={"batch_size": 3}, progressbar=False
        )
        probabilities[cached] = torch.tensor(
            [p for _, _, p in brain.test_utterances], dtype=torch.float64
        )
    difference = (probabilities[True] - probabilities[False]).abs().max()
    print(f"largest probability difference: {difference.item():.3g}")
    assert probabilities[False].min() < 0.2 < 0.5 < probabilities[False].max()
    assert difference <= SAME_PREDICTIONS_TOLERANCE
    assert difference > 0  # the cache is float16: not a copy of the audio path
