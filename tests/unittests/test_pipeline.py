"""Datasets, crops and label encoders shared by the recipes."""

import json

import numpy as np
import pytest
import soundfile
import torch

from speechbrain_sercl.data.audio import load_audio
from speechbrain_sercl.data.pipeline import (
    EpochCrop,
    load_manifests,
    make_dataset,
    make_label_encoder,
)


@pytest.fixture
def manifest(tmp_path):
    entries = {}
    for index, emotion in enumerate(["sad", "angry", "sad"]):
        wav = tmp_path / f"u{index}.wav"
        ramp = np.linspace(-0.5, 0.5, 16000 * 2)  # distinct samples
        soundfile.write(wav, ramp + 0.01 * index, 16000, subtype="FLOAT")
        entries[f"u{index}"] = {
            "wav": str(wav),
            "emotion": emotion,
            "corpus": "c",
            "speaker": f"s{index % 2}",
        }
    return entries


def test_crop_depends_only_on_seed_epoch_and_id(manifest):
    crop = EpochCrop(seconds=0.5, seed=7)
    dataset = make_dataset(manifest, list(manifest), crop=crop)
    forward = [dataset[i]["sig"] for i in range(3)]
    backward = [dataset[i]["sig"] for i in reversed(range(3))][::-1]
    for first, second in zip(forward, backward, strict=True):
        assert torch.equal(first, second)
    # The same window as reading the file with the crop's own generator.
    expected = load_audio(
        manifest["u1"]["wav"], crop_seconds=0.5, generator=crop.generator("u1")
    )
    assert torch.equal(forward[1], expected)
    assert forward[1].shape == (8000,)
    crop.set_epoch(1)
    assert not torch.equal(dataset[1]["sig"], forward[1])


def test_whole_utterances_without_crop_and_max_seconds(manifest):
    whole = make_dataset(manifest, ["u0"])[0]["sig"]
    short = make_dataset(manifest, ["u0"], max_seconds=1.0)[0]["sig"]
    assert whole.shape == (32000,) and short.shape == (16000,)
    assert torch.equal(short, whole[:16000])


def test_encoded_labels_follow_sorted_class_names(manifest, tmp_path):
    encoder = make_label_encoder(
        [entry["emotion"] for entry in manifest.values()],
        tmp_path / "label_encoder.txt",
    )
    dataset = make_dataset(manifest, list(manifest), label_encoder=encoder)
    labels = [dataset[i]["emotion_encoded"].item() for i in range(3)]
    assert labels == [1, 0, 1]  # angry = 0, sad = 1


def test_items_carry_the_manifest_strings(manifest):
    dataset = make_dataset(manifest, ["u2", "u1"])
    items = [dataset[i] for i in range(2)]
    assert [
        (item["id"], item["corpus"], item["speaker"], item["emotion"])
        for item in items
    ] == [("u2", "c", "s0", "sad"), ("u1", "c", "s1", "angry")]
    assert set(items[0]) == {"id", "sig", "emotion", "corpus", "speaker"}


def test_saved_label_encoder_must_match_the_data(tmp_path):
    path = tmp_path / "label_encoder.txt"
    make_label_encoder(["sad", "angry"], path)
    assert len(make_label_encoder(["angry", "sad", "sad"], path)) == 2
    with pytest.raises(ValueError, match="label_encoder.txt: holds classes"):
        make_label_encoder(["sad", "angry", "happy"], path)


def test_unknown_ids_and_duplicate_manifests_are_refused(manifest, tmp_path):
    with pytest.raises(KeyError, match="not in the manifest"):
        make_dataset(manifest, ["u0", "missing"])
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"u0": manifest["u0"]}))
    second.write_text(json.dumps({"u0": manifest["u0"]}))
    with pytest.raises(ValueError, match="b.json: utterance ids already"):
        load_manifests([first, second])


def test_crop_rejects_non_positive_length():
    with pytest.raises(ValueError, match="crop seconds"):
        EpochCrop(0)
