"""A changed release is prepared again, manifest entries keep the
checksum of their audio, and a corpus prepared again from a changed
release gets new folds (the old ones kept)."""

import hashlib
import json
import os

import numpy as np
import pytest
from corpus_fixtures import FIXTURE_SECONDS, write_casia, write_wav

from speechbrain_sercl.data.casia import prepare_casia
from speechbrain_sercl.data.folds import (
    FoldsMismatchError,
    folds_path,
    load_or_create_folds,
)
from speechbrain_sercl.data.manifest import load_manifest


def test_a_changed_release_is_prepared_again_and_a_touch_changes_nothing(
    tmp_path,
):
    root = write_casia(tmp_path / "casia")
    save = tmp_path / "save"
    assert not prepare_casia(root, save).reused
    manifest = (save / "manifest.json").read_bytes()
    assert prepare_casia(root, save).reused

    wav = root / "liuchanhg" / "angry" / "201.wav"
    later = os.stat(wav).st_mtime_ns + 10**9
    os.utime(wav, ns=(later, later))  # touched: read again, same manifest
    assert not prepare_casia(root, save).reused
    assert (save / "manifest.json").read_bytes() == manifest

    # Modified in place, same length: another checksum, same duration.
    write_wav(wav, samples=0.1 * np.ones(round(16000 * FIXTURE_SECONDS)))
    assert not prepare_casia(root, save).reused
    entry = load_manifest(save / "manifest.json")["casia_liuchanhg_angry_201"]
    assert entry["duration"] == FIXTURE_SECONDS
    assert entry["checksum"] == (
        "sha256:" + hashlib.sha256(wav.read_bytes()).hexdigest()
    )

    wav.unlink()  # removed
    report = prepare_casia(root, save)
    assert not report.reused and report.num_utterances == 10
    assert "casia_liuchanhg_angry_201" not in load_manifest(
        save / "manifest.json"
    )
    (root / "._202.wav").write_bytes(b"macOS metadata")  # ignored
    assert prepare_casia(root, save).reused


def test_unvalidated_preparation_keeps_size_and_time_of_each_file(tmp_path):
    root = write_casia(tmp_path / "casia")
    report = prepare_casia(root, tmp_path / "save", validate_audio=False)
    entry = load_manifest(report.manifest_path)["casia_wangzhe_fear_201"]
    status = os.stat(root / "wangzhe" / "Fearful" / "201.wav")
    assert entry["checksum"] == f"stat:{status.st_size}:{status.st_mtime_ns}"


def manifest_of(count):
    return {
        f"u{i}": {"emotion": "ab"[i % 2], "speaker": f"s{i % 3}"}
        for i in range(count)
    }


def test_folds_of_an_earlier_preparation_are_kept_and_new_ones_made(
    tmp_path, caplog
):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest_of(12)))
    first = load_or_create_folds(str(path), "paper", 3, preparation="one")
    folds_file = folds_path(str(path), "paper")
    old = open(folds_file, "rb").read()
    # The same data prepared again (a touch): the same folds, kept.
    assert load_or_create_folds(str(path), "paper", 3, preparation="two") == (
        first
    )
    assert open(folds_file, "rb").read() == old
    # Edited by hand (same preparation): refused, as before.
    path.write_text(json.dumps(manifest_of(10)))
    with pytest.raises(FoldsMismatchError, match="ids removed"):
        load_or_create_folds(str(path), "paper", 3, preparation="one")
    # Prepared again from a changed release: new folds, the old ones kept.
    folds = load_or_create_folds(str(path), "paper", 3, preparation="three")
    assert sorted(folds) == sorted(manifest_of(10))
    kept = [name for name in os.listdir(tmp_path) if name.count(".") == 2]
    assert len(kept) == 1
    assert (tmp_path / kept[0]).read_bytes() == old
    assert f"the old folds are kept as {tmp_path / kept[0]}" in caplog.text
