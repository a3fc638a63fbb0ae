"""Tests for the CASIA reader on tiny corpora in the real layout."""

import hashlib
import json
import logging
import os

import numpy as np
import pytest
from corpus_fixtures import (
    FIXTURE_SECONDS,
    write_casia,
    write_converted_casia,
    write_iemocap,
    write_wav,
)

from speechbrain_sercl.data import CORPORA, prepare_corpus
from speechbrain_sercl.data.casia import prepare_casia
from speechbrain_sercl.data.manifest import PreparationError, load_manifest

# What the reader must find in CASIA_LAYOUT, written out by hand:
# utt_id -> (relative wav path, emotion, speaker).
EXPECTED = {
    "casia_liuchanhg_angry_201": ("liuchanhg/angry/201.wav", "angry"),
    "casia_liuchanhg_angry_202": ("liuchanhg/angry/202.wav", "angry"),
    "casia_liuchanhg_fear_201": ("liuchanhg/fear/201.wav", "fear"),
    "casia_liuchanhg_happy_201": ("liuchanhg/happy/201.wav", "happy"),
    "casia_ZhaoZuoxiang_angry_201": ("ZhaoZuoxiang/Anger/201.wav", "angry"),
    "casia_ZhaoZuoxiang_neutral_201": (
        "ZhaoZuoxiang/neutral/201.wav",
        "neutral",
    ),
    "casia_ZhaoZuoxiang_sad_201": ("ZhaoZuoxiang/sad/201.wav", "sad"),
    "casia_ZhaoZuoxiang_surprise_201": (
        "ZhaoZuoxiang/surprise/201.wav",
        "surprise",
    ),
    "casia_wangzhe_happy_201": ("wangzhe/happiness/201.wav", "happy"),
    "casia_wangzhe_fear_201": ("wangzhe/Fearful/201.wav", "fear"),
    "casia_wangzhe_surprise_201": ("wangzhe/surprised/201.wav", "surprise"),
}


def _expected_manifest(root, utt_ids=EXPECTED):
    return {
        utt_id: {
            "wav": str(root / EXPECTED[utt_id][0]),
            "duration": FIXTURE_SECONDS,
            "emotion": EXPECTED[utt_id][1],
            "corpus": "casia",
            "speaker": EXPECTED[utt_id][0].split("/")[0],
            "session": EXPECTED[utt_id][0].split("/")[0],
            "checksum": "sha256:"
            + hashlib.sha256(
                (root / EXPECTED[utt_id][0]).read_bytes()
            ).hexdigest(),
        }
        for utt_id in utt_ids
    }


def _skip_reasons(report, root):
    return {os.path.relpath(path, root): why for path, why in report.skipped}


def test_manifest_is_exactly_the_expected_one(tmp_path):
    root = write_casia(tmp_path / "casia")
    report = prepare_casia(root, tmp_path / "save")
    assert load_manifest(report.manifest_path) == _expected_manifest(root)
    assert report.mapped_aliases == {
        "Anger": "angry",
        "Fearful": "fear",
        "happiness": "happy",
        "surprised": "surprise",
    }
    assert report.emotion_counts == {
        "neutral": 1,
        "happy": 2,
        "sad": 1,
        "angry": 3,
        "fear": 2,
        "surprise": 2,
    }
    assert report.speaker_counts == {
        "ZhaoZuoxiang": 4,
        "liuchanhg": 4,
        "wangzhe": 3,
    }
    assert report.hours == pytest.approx(11 * FIXTURE_SECONDS / 3600)
    assert report.skipped == [] and report.dropped_labels == {}


def test_unknown_emotion_folder_is_skipped_file_by_file(tmp_path):
    root = write_casia(tmp_path, {"wangzhe": {"sad": 1, "bored": 2}})
    report = prepare_casia(root, tmp_path / "save")
    assert set(load_manifest(report.manifest_path)) == {"casia_wangzhe_sad_201"}
    reasons = _skip_reasons(report, root)
    assert set(reasons) == {"wangzhe/bored/201.wav", "wangzhe/bored/202.wav"}
    assert all(
        "unknown CASIA emotion folder 'bored'" in r for r in reasons.values()
    )


def test_macos_metadata_is_ignored_silently(tmp_path):
    root = write_casia(tmp_path / "casia")
    metadata = [
        root / ".DS_Store",
        root / "wangzhe" / ".DS_Store",
        root / "wangzhe" / "happiness" / "._201.wav",
        root / "__MACOSX" / "wangzhe" / "sad" / "._201.wav",
    ]
    for path in metadata:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    report = prepare_casia(root, tmp_path / "save")
    assert load_manifest(report.manifest_path) == _expected_manifest(root)
    assert report.skipped == []
    assert set(report.ignored) == {str(path) for path in metadata[:3]} | {
        str(root / "__MACOSX")
    }


def test_bad_audio_is_skipped_and_odd_audio_kept(tmp_path):
    root = write_casia(tmp_path / "casia")
    (root / "liuchanhg" / "angry" / "201.wav").write_bytes(b"garbage" * 30)
    write_wav(root / "liuchanhg" / "fear" / "201.wav", samples=np.zeros(0))
    write_wav(root / "liuchanhg" / "happy" / "201.wav", samples=np.zeros(9))
    write_wav(root / "wangzhe" / "Fearful" / "201.wav", sample_rate=8000)
    write_wav(
        root / "wangzhe" / "surprised" / "201.wav",
        sample_rate=48000,
        channels=2,
    )
    report = prepare_casia(root, tmp_path / "save")
    manifest = load_manifest(report.manifest_path)
    bad = {
        "casia_liuchanhg_angry_201",
        "casia_liuchanhg_fear_201",
        "casia_liuchanhg_happy_201",
    }
    assert manifest == _expected_manifest(root, set(EXPECTED) - bad)
    reasons = _skip_reasons(report, root)
    assert "unreadable" in reasons["liuchanhg/angry/201.wav"]
    assert "zero length" in reasons["liuchanhg/fear/201.wav"]
    assert "too short" in reasons["liuchanhg/happy/201.wav"]
    assert len(reasons) == 3
    assert report.warnings == []
    assert report.conversions == {
        "mixed down from 2 channels": 1,
        "resampled from 8000 Hz": 1,
        "resampled from 48000 Hz": 1,
    }


def test_header_only_check_skips_unreadable_but_not_silent(tmp_path):
    root = write_casia(tmp_path, {"wangzhe": {"sad": 3}})
    (root / "wangzhe" / "sad" / "201.wav").write_bytes(b"garbage" * 30)
    write_wav(root / "wangzhe" / "sad" / "202.wav", samples=np.zeros(4000))
    report = prepare_casia(root, tmp_path / "save", validate_audio=False)
    assert set(load_manifest(report.manifest_path)) == {
        "casia_wangzhe_sad_202",
        "casia_wangzhe_sad_203",
    }
    assert list(_skip_reasons(report, root)) == ["wangzhe/sad/201.wav"]


def test_skips_when_prepared_with_the_same_options(tmp_path):
    root = write_casia(tmp_path / "casia")
    manifest_path = tmp_path / "save" / "manifest.json"
    first = prepare_casia(root, tmp_path / "save")
    before = os.stat(manifest_path)
    second = prepare_casia(root, tmp_path / "save")
    assert second.reused and not first.reused
    assert os.stat(manifest_path).st_ino == before.st_ino
    assert os.stat(manifest_path).st_mtime_ns == before.st_mtime_ns
    assert second.mapped_aliases == first.mapped_aliases

    (tmp_path / "save" / "prepare_report.json").write_text('{"old": 1}')
    assert not prepare_casia(root, tmp_path / "save").reused
    (tmp_path / "save" / "prepare_options.json").write_text("{truncated")
    assert not prepare_casia(root, tmp_path / "save").reused
    assert prepare_casia(root, tmp_path / "save").reused

    renamed = prepare_casia(root, tmp_path / "save", corpus_name="casia6")
    assert not renamed.reused
    corpora = {
        entry["corpus"] for entry in load_manifest(manifest_path).values()
    }
    assert corpora == {"casia6"}


def test_wrong_or_missing_folder_raises_and_keeps_manifest(tmp_path):
    root = write_casia(tmp_path / "casia")
    prepare_casia(root, tmp_path / "save")
    good = (tmp_path / "save" / "manifest.json").read_bytes()
    iemocap = write_iemocap(tmp_path / "iemocap")
    with pytest.raises(PreparationError, match="is not a CASIA corpus"):
        prepare_casia(iemocap, tmp_path / "save")
    with pytest.raises(FileNotFoundError, match="absent.*does not exist"):
        prepare_casia(tmp_path / "absent", tmp_path / "save")
    assert (tmp_path / "save" / "manifest.json").read_bytes() == good


def test_registry_dispatches_to_the_reader(tmp_path):
    root = write_casia(tmp_path / "casia")
    assert CORPORA["casia"].prepare is prepare_casia
    report = prepare_corpus("casia", root, tmp_path / "save")
    assert load_manifest(report.manifest_path) == _expected_manifest(root)
    with pytest.raises(ValueError, match="unknown corpus reader 'msp'"):
        prepare_corpus("msp", root, tmp_path / "other")
    assert not (tmp_path / "other").exists()


# What prepare_casia must count on write_converted_casia, by hand: 8 files of
# liuchanhg and ZhaoZuoxiang at 22.05 kHz, one wangzhe file at 48 kHz, one
# stereo file in each of ZhaoZuoxiang and wangzhe.
CONVERSIONS = {
    "mixed down from 2 channels": 2,
    "resampled from 22050 Hz": 8,
    "resampled from 48000 Hz": 1,
}
CONVERSION_LINES = [
    "converted on reading to mono 16000 Hz (normal, not a problem):",
    "  mixed down from 2 channels: 2 files",
    "  resampled from 22050 Hz: 8 files",
    "  resampled from 48000 Hz: 1 file",
]


def _warning_messages(caplog):
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING
    ]


def test_conversions_are_counted_once_and_clipping_is_warned(tmp_path, caplog):
    root = write_converted_casia(tmp_path / "casia")
    with caplog.at_level(logging.DEBUG):
        report = prepare_casia(root, tmp_path / "save")
    manifest = load_manifest(report.manifest_path)
    assert set(manifest) == set(EXPECTED) and report.skipped == []
    for entry in manifest.values():  # 5512 frames at 22.05 kHz
        assert entry["duration"] == pytest.approx(FIXTURE_SECONDS, abs=1e-4)
    assert report.conversions == CONVERSIONS
    assert list(report.conversions) == list(CONVERSIONS)  # 22050 < 48000
    clipped = str(root / "wangzhe" / "Fearful" / "201.wav")
    (warning,) = report.warnings
    assert warning.startswith(f"{clipped}: ") and "clipped" in warning

    warned = _warning_messages(caplog)
    assert any("clipped" in message for message in warned)
    for message in warned:
        assert "resampl" not in message and "mixed down" not in message
        assert "22050" not in message and "channels" not in message

    lines = report.summary().splitlines()
    start = lines.index(CONVERSION_LINES[0])
    assert lines[start : start + 4] == CONVERSION_LINES
    assert [line for line in lines if "resampled" in line] == (
        CONVERSION_LINES[2:]
    )
    assert not any(".wav" in line for line in CONVERSION_LINES)
    assert lines[start + 4 :] == ["warnings: 1", f"  {warning}"]

    saved = json.loads((tmp_path / "save" / "prepare_report.json").read_text())
    assert saved["conversions"] == CONVERSIONS
    assert saved["warnings"] == [warning]
    reused = prepare_casia(root, tmp_path / "save")
    assert reused.reused
    assert reused.conversions == CONVERSIONS
    assert list(reused.conversions) == list(CONVERSIONS)
    assert CONVERSION_LINES[1] in reused.summary().splitlines()


def test_header_only_check_counts_the_same_conversions(tmp_path, caplog):
    root = write_converted_casia(tmp_path / "casia")
    report = prepare_casia(root, tmp_path / "save", validate_audio=False)
    assert report.conversions == CONVERSIONS
    assert report.warnings == []  # clipping needs the samples
    assert _warning_messages(caplog) == []


def test_report_of_an_older_version_is_prepared_again(tmp_path):
    root = write_converted_casia(tmp_path / "casia")
    prepare_casia(root, tmp_path / "save")
    report_path = tmp_path / "save" / "prepare_report.json"
    old = json.loads(report_path.read_text())
    # Written before conversions were counted: one warning per file.
    del old["conversions"]
    old["warnings"] = [
        f"{path}: sample rate 22050 Hz, resampled to 16000 Hz on reading"
        for path in sorted(root.glob("liuchanhg/*/*.wav"))
    ]
    report_path.write_text(json.dumps(old))
    again = prepare_casia(root, tmp_path / "save")
    assert not again.reused
    assert again.conversions == CONVERSIONS and len(again.warnings) == 1
    saved = json.loads(report_path.read_text())
    assert saved["conversions"] == CONVERSIONS
    assert prepare_casia(root, tmp_path / "save").reused
