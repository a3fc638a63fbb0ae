"""Tests for the IEMOCAP reader on tiny releases in the real layout."""

import hashlib
import json
import os

import numpy as np
import pytest
from corpus_fixtures import (
    FIXTURE_SECONDS,
    IEMOCAP_LABELS,
    iemocap_wav_path,
    write_casia,
    write_iemocap,
    write_wav,
)

from speechbrain_sercl.data.iemocap import prepare_iemocap, read_emo_evaluation
from speechbrain_sercl.data.manifest import PreparationError, load_manifest

# What the reader must keep from IEMOCAP_LABELS, written out by hand:
# utt_id -> (emotion, speaker, session). exc and hap are both happy; the
# speaker follows the gender letter of the id's last token.
EXPECTED = {
    "Ses01F_impro01_F000": ("neutral", "Ses01F", "Session1"),
    "Ses01F_impro01_M000": ("happy", "Ses01M", "Session1"),
    "Ses01F_impro01_M001": ("happy", "Ses01M", "Session1"),
    "Ses01F_script01_1_F000": ("angry", "Ses01F", "Session1"),
    "Ses02M_impro03_M000": ("sad", "Ses02M", "Session2"),
    "Ses02M_script02_2_F000": ("neutral", "Ses02F", "Session2"),
    "Ses03F_impro05_M000": ("angry", "Ses03M", "Session3"),
    "Ses04M_script03_1_M000": ("happy", "Ses04M", "Session4"),
    "Ses05F_impro07_F000": ("sad", "Ses05F", "Session5"),
}
EXPECTED_DROPPED = {"dis": 1, "fea": 1, "fru": 1, "oth": 1, "sur": 1, "xxx": 1}


def _expected_manifest(release, utt_ids):
    return {
        utt_id: {
            "wav": str(iemocap_wav_path(release, utt_id)),
            "duration": FIXTURE_SECONDS,
            "emotion": EXPECTED[utt_id][0],
            "corpus": "iemocap",
            "speaker": EXPECTED[utt_id][1],
            "session": EXPECTED[utt_id][2],
            "checksum": _sha256(iemocap_wav_path(release, utt_id)),
        }
        for utt_id in utt_ids
    }


def _sha256(path):
    with open(path, "rb") as stream:
        return "sha256:" + hashlib.sha256(stream.read()).hexdigest()


def _skip_reasons(report):
    return {os.path.basename(path): reason for path, reason in report.skipped}


def test_read_emo_evaluation_keeps_only_label_lines(tmp_path):
    path = tmp_path / "Ses01F_impro01.txt"
    path.write_text(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5, 2.5]\n"
        "C-E1:\tNeutral;\t()\n"
        "A-E1:\tval 3; act 2; dom  2;\t()\n\n"
        "[10.0100 - 11.3925]\tSes01F_impro01_M000\txxx\t[2.0, 3.0, 2.5]\n"
    )
    assert read_emo_evaluation(path) == {
        "Ses01F_impro01_F000": "neu",
        "Ses01F_impro01_M000": "xxx",
    }


def test_manifest_is_exactly_the_expected_one(tmp_path):
    release = write_iemocap(tmp_path / "data")
    report = prepare_iemocap(tmp_path / "data", tmp_path / "save")
    manifest = load_manifest(tmp_path / "save" / "manifest.json")
    assert manifest == _expected_manifest(release, EXPECTED)
    assert report.manifest_path == str(tmp_path / "save" / "manifest.json")
    assert report.emotion_counts == {
        "neutral": 2,
        "happy": 3,
        "sad": 2,
        "angry": 2,
    }
    assert report.speaker_counts == {
        "Ses01F": 2,
        "Ses01M": 2,
        "Ses02F": 1,
        "Ses02M": 1,
        "Ses03M": 1,
        "Ses04M": 1,
        "Ses05F": 1,
    }
    assert report.emotion_speaker_counts["happy"] == {
        "Ses01M": 2,
        "Ses04M": 1,
    }
    assert report.dropped_labels == EXPECTED_DROPPED
    assert report.mapped_aliases == {
        "ang": "angry",
        "exc": "happy",
        "hap": "happy",
        "neu": "neutral",
    }
    assert report.hours == pytest.approx(9 * FIXTURE_SECONDS / 3600)
    assert report.skipped == [] and report.missing == []
    assert report.warnings == [] and report.reused is False
    assert report.conversions == {}


def test_release_folder_or_its_parent_give_the_same_manifest(tmp_path):
    release = write_iemocap(tmp_path / "data")
    prepare_iemocap(tmp_path / "data", tmp_path / "a")
    prepare_iemocap(release, tmp_path / "b")
    assert load_manifest(tmp_path / "a" / "manifest.json") == load_manifest(
        tmp_path / "b" / "manifest.json"
    )


def test_improvised_only_keeps_improvised_dialogs(tmp_path):
    release = write_iemocap(tmp_path)
    report = prepare_iemocap(tmp_path, tmp_path / "save", improvised_only=True)
    improvised = [utt_id for utt_id in EXPECTED if "_impro" in utt_id]
    assert load_manifest(report.manifest_path) == _expected_manifest(
        release, improvised
    )
    assert report.dropped_labels == {"dis": 1, "fru": 1, "oth": 1, "sur": 1}


def test_unlabelled_wav_and_label_without_wav_are_skipped(tmp_path):
    wav_ids = set(IEMOCAP_LABELS) - {"Ses02M_impro03_M000"}
    release = write_iemocap(tmp_path, wav_ids=wav_ids)
    write_wav(iemocap_wav_path(release, "Ses01F_impro01_M009"))
    report = prepare_iemocap(tmp_path, tmp_path / "save")
    manifest = load_manifest(report.manifest_path)
    assert set(manifest) == set(EXPECTED) - {"Ses02M_impro03_M000"}
    reasons = {
        os.path.basename(path): reason for path, reason in report.skipped
    }
    assert reasons["Ses01F_impro01_M009.wav"] == (
        "no label in dialog/EmoEvaluation"
    )
    assert "wav file is missing" in reasons["Ses02M_impro03_M000.wav"]
    assert "Ses02M_impro03.txt" in reasons["Ses02M_impro03_M000.wav"]
    assert len(report.skipped) == 2


def test_bad_audio_is_skipped_or_warned_and_macos_files_ignored(tmp_path):
    release = write_iemocap(tmp_path)
    wav = {utt_id: iemocap_wav_path(release, utt_id) for utt_id in EXPECTED}
    wav["Ses01F_impro01_F000"].write_bytes(b"\x00garbage\xff" * 50)
    write_wav(wav["Ses01F_impro01_M000"], samples=np.zeros((0, 1)))
    write_wav(wav["Ses02M_impro03_M000"], samples=np.zeros(4000))
    write_wav(wav["Ses03F_impro05_M000"], channels=2)
    write_wav(wav["Ses04M_script03_1_M000"], sample_rate=44100)
    dialog = wav["Ses01F_impro01_M001"].parent
    (dialog / "._Ses01F_impro01_M001.wav").write_bytes(b"\x00\x05\x16\x07")
    (dialog / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    evaluation = release / "Session1" / "dialog" / "EmoEvaluation"
    (evaluation / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07")

    report = prepare_iemocap(tmp_path, tmp_path / "save")
    manifest = load_manifest(report.manifest_path)

    bad = {"Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses02M_impro03_M000"}
    assert set(manifest) == set(EXPECTED) - bad
    reasons = {
        os.path.basename(path): reason for path, reason in report.skipped
    }
    assert set(reasons) == {f"{utt_id}.wav" for utt_id in bad}
    assert "unreadable" in reasons["Ses01F_impro01_F000.wav"]
    assert "zero length" in reasons["Ses01F_impro01_M000.wav"]
    assert "all samples are zero" in reasons["Ses02M_impro03_M000.wav"]
    assert {os.path.basename(path) for path in report.ignored} == {
        "._Ses01F_impro01_M001.wav",
        ".DS_Store",
        "._Ses01F_impro01.txt",
    }
    assert report.warnings == []
    assert report.conversions == {
        "mixed down from 2 channels": 1,
        "resampled from 44100 Hz": 1,
    }
    assert manifest["Ses04M_script03_1_M000"]["duration"] == pytest.approx(
        FIXTURE_SECONDS
    )


def test_missing_session_is_warned_and_counted(tmp_path):
    labels = {
        utt_id: label
        for utt_id, label in IEMOCAP_LABELS.items()
        if not utt_id.startswith("Ses03")
    }
    write_iemocap(tmp_path, labels=labels)
    report = prepare_iemocap(tmp_path, tmp_path / "save")
    assert report.missing == ["Session3"]
    assert any("Session3" in warning for warning in report.warnings)
    assert set(load_manifest(report.manifest_path)) == set(EXPECTED) - {
        "Ses03F_impro05_M000"
    }


def test_skips_when_prepared_with_the_same_options(tmp_path):
    write_iemocap(tmp_path / "data")
    save = tmp_path / "save"
    first = prepare_iemocap(tmp_path / "data", save)
    before = os.stat(save / "manifest.json")
    second = prepare_iemocap(tmp_path / "data", save)
    after = os.stat(save / "manifest.json")
    assert second.reused and not first.reused
    assert (after.st_ino, after.st_mtime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
    )
    assert second.emotion_speaker_counts == first.emotion_speaker_counts
    assert second.dropped_labels == first.dropped_labels

    third = prepare_iemocap(tmp_path / "data", save, improvised_only=True)
    assert not third.reused
    assert os.stat(save / "manifest.json").st_ino != before.st_ino
    assert len(load_manifest(save / "manifest.json")) == 6
    options = json.loads((save / "prepare_options.json").read_text())
    assert options["improvised_only"] is True


def _prepared_manifest_bytes(tmp_path):
    write_iemocap(tmp_path / "good")
    prepare_iemocap(tmp_path / "good", tmp_path / "save")
    return (tmp_path / "save" / "manifest.json").read_bytes()


def test_missing_folder_raises_and_keeps_existing_manifest(tmp_path):
    good = _prepared_manifest_bytes(tmp_path)
    with pytest.raises(FileNotFoundError, match="absent.*does not exist"):
        prepare_iemocap(tmp_path / "absent", tmp_path / "save")
    assert (tmp_path / "save" / "manifest.json").read_bytes() == good


def test_wrong_corpus_raises_and_keeps_existing_manifest(tmp_path):
    good = _prepared_manifest_bytes(tmp_path)
    casia = write_casia(tmp_path / "casia")
    with pytest.raises(PreparationError, match="casia is not an IEMOCAP"):
        prepare_iemocap(casia, tmp_path / "save")
    assert (tmp_path / "save" / "manifest.json").read_bytes() == good


def test_sessions_without_label_folders_raise(tmp_path):
    for session in ("Session1", "Session2"):
        write_wav(tmp_path / session / "sentences" / "wav" / "d" / "u.wav")
    with pytest.raises(PreparationError, match="no session with"):
        prepare_iemocap(tmp_path, tmp_path / "save")
    assert not (tmp_path / "save").exists()


def test_all_audio_bad_raises_and_keeps_existing_manifest(tmp_path):
    good = _prepared_manifest_bytes(tmp_path)
    labels = {"Ses01F_impro01_F000": "neu", "Ses01F_impro01_M000": "ang"}
    release = write_iemocap(tmp_path / "broken", labels=labels)
    for utt_id in labels:
        iemocap_wav_path(release, utt_id).write_bytes(b"not audio")
    with pytest.raises(PreparationError, match="no utterance with usable"):
        prepare_iemocap(tmp_path / "broken", tmp_path / "save")
    assert (tmp_path / "save" / "manifest.json").read_bytes() == good
