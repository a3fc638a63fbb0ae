"""Tests for the EmoDB, RAVDESS, CREMA-D and ESD readers on tiny corpora in
their release layouts: label mappings, speakers, speaker groups, skipped
and dropped files, bad input."""

import os

import numpy as np
import pytest
from corpus_fixtures import FIXTURE_SECONDS, write_files, write_wav

from speechbrain_sercl.data import CORPORA, prepare_corpus
from speechbrain_sercl.data.corpora import prepare_corpora
from speechbrain_sercl.data.manifest import PreparationError, load_manifest


def _manifest(report):
    return load_manifest(report.manifest_path)


def _labels(report):
    """utt_id -> (emotion, speaker, session)."""
    return {
        utt: (entry["emotion"], entry["speaker"], entry["session"])
        for utt, entry in _manifest(report).items()
    }


def _skip_reasons(report, root):
    return {os.path.relpath(path, root): why for path, why in report.skipped}


# EmoDB: one file per speaker (all ten), every letter; written by hand:
# file -> (emotion, speaker, speaker group).
EMODB = {
    "03a01Fa.wav": ("happy", "03", "03-08"),
    "08a02Wb.wav": ("angry", "08", "03-08"),
    "09b03Lc.wav": ("boredom", "09", "09-10"),
    "10a04Ea.wav": ("disgust", "10", "09-10"),
    "11a05Aa.wav": ("fear", "11", "11-12"),
    "12b01Ta.wav": ("sad", "12", "11-12"),
    "13a07Na.wav": ("neutral", "13", "13-14"),
    "14b09Fd.wav": ("happy", "14", "13-14"),
    "15b10Wa.wav": ("angry", "15", "15-16"),
    "16a01Tb.wav": ("sad", "16", "15-16"),
}


def _write_emodb(folder):
    return write_files(folder, [f"wav/{name}" for name in EMODB])


def test_emodb_letters_speakers_and_groups(tmp_path):
    root = _write_emodb(tmp_path / "emodb")
    write_wav(root / "wav" / "03a01Xa.wav")  # no such letter
    write_wav(root / "wav" / "03a01F.wav")  # no version letter
    (root / "wav" / "._03a01Fa.wav").write_bytes(b"\x00\x05\x16\x07")
    (root / "erkennung.txt").write_text("")
    report = prepare_corpus("emodb", root, tmp_path / "save")
    assert _labels(report) == {
        f"emodb_{name[:-4]}": labels for name, labels in EMODB.items()
    }
    manifest = _manifest(report)
    assert manifest["emodb_03a01Fa"]["wav"] == str(root / "wav/03a01Fa.wav")
    assert manifest["emodb_03a01Fa"]["duration"] == FIXTURE_SECONDS
    reasons = _skip_reasons(report, root)
    assert set(reasons) == {"wav/03a01Xa.wav", "wav/03a01F.wav"}
    assert "unknown EmoDB emotion letter 'X'" in reasons["wav/03a01Xa.wav"]
    assert "not an EmoDB file name" in reasons["wav/03a01F.wav"]
    assert report.ignored == [str(root / "wav" / "._03a01Fa.wav")]


def test_emodb_reads_the_wav_folder_itself(tmp_path):
    root = _write_emodb(tmp_path / "emodb")
    whole = prepare_corpus("emodb", root, tmp_path / "a")
    inner = prepare_corpus("emodb", root / "wav", tmp_path / "b")
    assert _manifest(whole) == _manifest(inner)


def test_emodb_speaker_protocol_holds_out_two_speakers_per_fold(tmp_path):
    root = _write_emodb(tmp_path / "emodb")
    spec = {"emodb": {"data_folder": str(root)}}
    for protocol in ("speaker", "sessions"):
        (manifest_path, folds) = prepare_corpora(
            spec, tmp_path / "prepared", protocol, 5, 0
        )["emodb"]
        speakers = {}
        manifest = load_manifest(manifest_path)
        for utt, fold in folds.items():
            speakers.setdefault(fold, set()).add(manifest[utt]["speaker"])
        assert speakers == {
            0: {"03", "08"},
            1: {"09", "10"},
            2: {"11", "12"},
            3: {"13", "14"},
            4: {"15", "16"},
        }


def test_emodb_wrong_folder_and_bad_audio(tmp_path):
    root = _write_emodb(tmp_path / "emodb")
    (root / "wav" / "03a01Fa.wav").write_bytes(b"garbage" * 30)
    write_wav(root / "wav" / "08a02Wb.wav", samples=np.zeros(4000))
    report = prepare_corpus("emodb", root, tmp_path / "save")
    reasons = _skip_reasons(report, root)
    assert "unreadable" in reasons["wav/03a01Fa.wav"]
    assert "silent" in reasons["wav/08a02Wb.wav"]
    assert len(_manifest(report)) == len(EMODB) - 2
    with pytest.raises(PreparationError, match="is not an EmoDB release"):
        prepare_corpus("emodb", tmp_path / "save", tmp_path / "other")
    with pytest.raises(FileNotFoundError, match="EmoDB data_folder"):
        prepare_corpus("emodb", tmp_path / "absent", tmp_path / "other")


# RAVDESS speech: actor folder -> files; every emotion code once, written
# by hand: file -> (emotion, actor, actor group of actors 01, 02, 07, 12, 24:
# five actors, five groups of one).
RAVDESS = {
    "03-01-01-01-01-01-01.wav": ("neutral", "01", "01"),
    "03-01-02-02-01-02-01.wav": ("calm", "01", "01"),
    "03-01-03-01-02-01-02.wav": ("happy", "02", "02"),
    "03-01-04-02-02-02-02.wav": ("sad", "02", "02"),
    "03-01-05-01-01-01-07.wav": ("angry", "07", "07"),
    "03-01-06-02-01-01-12.wav": ("fear", "12", "12"),
    "03-01-07-01-01-02-24.wav": ("disgust", "24", "24"),
    "03-01-08-02-02-01-24.wav": ("surprise", "24", "24"),
}


def _ravdess_path(name):
    return f"Actor_{name[-6:-4]}/{name}"


def test_ravdess_codes_actors_song_and_skips(tmp_path):
    root = write_files(
        tmp_path / "ravdess",
        [_ravdess_path(name) for name in RAVDESS],
        sample_rate=48000,
    )
    odd = {
        "Actor_01/03-02-03-01-01-01-01.wav": None,  # song: dropped
        "Actor_02/03-02-05-02-01-01-02.wav": None,  # song: dropped
        "Actor_01/01-01-03-01-01-01-01.wav": "modality 01 is not audio-only",
        "Actor_01/03-01-09-01-01-01-01.wav": "unknown RAVDESS emotion code 09",
        "Actor_01/03-01-03-01-01-01-02.wav": "actor 02 in the name but in "
        "the folder of actor 01",
        "Actor_02/03-01-03-01.wav": "not a RAVDESS file name",
    }
    write_files(root, odd)
    (root / "Actor_01" / "03-01-01-01-01-01-01.mp4").write_bytes(b"video")
    report = prepare_corpus("ravdess", root, tmp_path / "save")
    assert _labels(report) == {
        f"ravdess_{name[:-4]}": labels for name, labels in RAVDESS.items()
    }
    assert report.dropped_labels == {"song": 2}
    reasons = _skip_reasons(report, root)
    expected = {path: why for path, why in odd.items() if why}
    assert set(reasons) == set(expected)
    for path, why in expected.items():
        assert why in reasons[path]
    assert report.conversions == {"resampled from 48000 Hz": len(RAVDESS)}
    assert report.ignored == [
        str(root / "Actor_01" / "03-01-01-01-01-01-01.mp4")
    ]


def test_ravdess_groups_24_actors_into_five(tmp_path):
    names = [f"03-01-01-01-01-01-{actor:02d}.wav" for actor in range(1, 25)]
    root = tmp_path / "Audio_Speech_Actors_01-24"
    write_files(root, [_ravdess_path(name) for name in names])
    report = prepare_corpus("ravdess", tmp_path, tmp_path / "save")
    groups = {s: g for _, s, g in _labels(report).values()}
    # 24 actors: 5 + 5 + 5 + 5 + 4, the first groups get the extra one.
    expected = {}
    for first, last in ((1, 5), (6, 10), (11, 15), (16, 20), (21, 24)):
        for actor in range(first, last + 1):
            expected[f"{actor:02d}"] = f"{first:02d}-{last:02d}"
    assert groups == expected
    with pytest.raises(PreparationError, match="is not a RAVDESS speech"):
        prepare_corpus("ravdess", tmp_path / "save", tmp_path / "other")


# CREMA-D: every emotion code and level; file -> (emotion, actor).
CREMAD = {
    "1001_DFA_ANG_XX.wav": ("angry", "1001"),
    "1001_IEO_DIS_HI.wav": ("disgust", "1001"),
    "1002_IEO_FEA_MD.wav": ("fear", "1002"),
    "1003_TIE_HAP_LO.wav": ("happy", "1003"),
    "1090_ITS_NEU_XX.wav": ("neutral", "1090"),
    "1091_WSI_SAD_XX.wav": ("sad", "1091"),
}


def test_cremad_codes_levels_actors_and_bad_input(tmp_path):
    root = write_files(
        tmp_path / "CREMA-D", [f"AudioWAV/{name}" for name in CREMAD]
    )
    odd = {
        "AudioWAV/1004_DFA_CON_XX.wav": "unknown CREMA-D emotion code 'CON'",
        "AudioWAV/1004_DFA_ANG_ZZ.wav": "unknown CREMA-D level 'ZZ'",
        "AudioWAV/1004-DFA-ANG-XX.wav": "not a CREMA-D file name",
    }
    write_files(root, odd)
    empty = root / "AudioWAV" / "1076_MTI_SAD_XX.wav"
    write_wav(empty, samples=np.zeros(0))
    report = prepare_corpus("cremad", root, tmp_path / "save")
    # Groups are made from the actors found (1076's file is empty, but the
    # actor counts): six actors, so 1001 and 1002 share the first group.
    assert _labels(report) == {
        f"cremad_{name[:-4]}": (emotion, actor, group)
        for (name, (emotion, actor)), group in zip(
            CREMAD.items(),
            ["1001-1002", "1001-1002", "1001-1002", "1003", "1090", "1091"],
            strict=True,
        )
    }
    reasons = _skip_reasons(report, root)
    assert set(reasons) == {*odd, "AudioWAV/1076_MTI_SAD_XX.wav"}
    for path, why in odd.items():
        assert why in reasons[path]
    assert "zero length" in reasons["AudioWAV/1076_MTI_SAD_XX.wav"]
    inner = prepare_corpus("cremad", root / "AudioWAV", tmp_path / "inner")
    assert _manifest(inner) == _manifest(report)


def test_cremad_groups_91_actors_into_five(tmp_path):
    actors = range(1001, 1092)
    names = [f"AudioWAV/{actor}_DFA_ANG_XX.wav" for actor in actors]
    root = write_files(tmp_path / "CREMA-D", names)
    report = prepare_corpus(
        "cremad", root, tmp_path / "save", validate_audio=False
    )
    sizes = {}
    for _, _, group in _labels(report).values():
        sizes[group] = sizes.get(group, 0) + 1
    assert sizes == {
        "1001-1019": 19,
        "1020-1037": 18,
        "1038-1055": 18,
        "1056-1073": 18,
        "1074-1091": 18,
    }


# ESD: two Mandarin and two English speakers, official split folders.
ESD_FILES = {
    "0001/Angry/train/0001_000351.wav": ("angry", "0001"),
    "0001/Happy/evaluation/0001_000701.wav": ("happy", "0001"),
    "0002/Neutral/test/0002_000021.wav": ("neutral", "0002"),
    "0011/Sad/train/0011_001051.wav": ("sad", "0011"),
    "0011/Surprise/test/0011_001401.wav": ("surprise", "0011"),
    "0020/Neutral/train/0020_000001.wav": ("neutral", "0020"),
}
LANGUAGES = {"0001": "mandarin", "0002": "mandarin"}


def _esd_expected(language=None):
    return {
        f"esd_{os.path.basename(path)[:-4]}": (emotion, speaker, speaker)
        for path, (emotion, speaker) in ESD_FILES.items()
        if language in (None, LANGUAGES.get(speaker, "english"))
    }


def test_esd_official_layout_folders_and_skips(tmp_path):
    outer = tmp_path / "ESD"
    root = write_files(outer / "Emotion Speech Dataset", ESD_FILES)
    (root / "0001" / "0001.txt").write_text("0001_000001\tword\t中立\n")
    odd = {
        "0001/Bored/train/0001_000002.wav": "unknown ESD emotion folder",
        "0002/Sad/train/0001_001052.wav": "_<number>.wav of speaker 0002",
        "0021/Sad/train/0021_001052.wav": "speaker 0021 is not an ESD",
        # The flat copy sorts first and is kept; the split one is skipped.
        "0011/Sad/train/0011_001051.wav": "duplicate utterance id "
        "esd_0011_001051",
    }
    write_files(root, odd)
    write_wav(root / "0011" / "Sad" / "0011_001051.wav")
    report = prepare_corpus("esd", outer, tmp_path / "save")
    assert _labels(report) == _esd_expected()
    reasons = _skip_reasons(report, root)
    assert set(reasons) == set(odd)
    for path, why in odd.items():
        assert why in reasons[path]
    assert str(root / "0001" / "0001.txt") in report.ignored
    assert report.mapped_aliases == {
        "Angry": "angry",
        "Happy": "happy",
        "Neutral": "neutral",
        "Sad": "sad",
        "Surprise": "surprise",
    }


def test_esd_flat_variant_and_language_option(tmp_path):
    flat = {
        path.replace("/train", "")
        .replace("/evaluation", "")
        .replace("/test", ""): labels
        for path, labels in ESD_FILES.items()
    }
    root = write_files(tmp_path / "esd", flat)
    assert _labels(prepare_corpus("esd", root, tmp_path / "a")) == (
        _esd_expected()
    )
    english = prepare_corpus("esd", root, tmp_path / "b", language="english")
    assert _labels(english) == _esd_expected("english")
    assert english.dropped_labels == {"mandarin": 3}
    mandarin = prepare_corpus("esd", root, tmp_path / "c", language="mandarin")
    assert _labels(mandarin) == _esd_expected("mandarin")
    with pytest.raises(ValueError, match="ESD language must be one of"):
        prepare_corpus("esd", root, tmp_path / "d", language="german")


def test_esd_groups_twenty_speakers_into_fives_of_four(tmp_path):
    names = [f"{s:04d}/Sad/test/{s:04d}_001051.wav" for s in range(1, 21)]
    report = prepare_corpus(
        "esd", write_files(tmp_path / "esd", names), tmp_path / "save"
    )
    groups = {s: g for _, s, g in _labels(report).values()}
    assert groups == {
        f"{s:04d}": f"{4 * ((s - 1) // 4) + 1:04d}-{4 * ((s - 1) // 4) + 4:04d}"
        for s in range(1, 21)
    }


def test_registry_entries_declare_the_readers_classes():
    expected = {
        "emodb": {
            "angry", "boredom", "disgust", "fear", "happy", "neutral", "sad",
        },
        "ravdess": {
            "angry", "calm", "disgust", "fear", "happy", "neutral", "sad",
            "surprise",
        },
        "cremad": {"angry", "disgust", "fear", "happy", "neutral", "sad"},
        "esd": {"angry", "happy", "neutral", "sad", "surprise"},
    }  # fmt: skip
    for name, emotions in expected.items():
        assert set(CORPORA[name].emotions) == emotions
        assert CORPORA[name].speaker_groups == "session"


def test_corpora_override_adds_corpora_to_the_stage1_yaml():
    from speechbrain_sercl.protocol.runner import FoldRunner

    runner = FoldRunner(
        "wavlm",
        [
            "--data_folder_iemocap=/data/IEMOCAP_full_release",
            "--data_folder_casia=/data/CASIA",
            "--corpora={emodb: /data/EmoDB, esd: {data_folder: /data/ESD, "
            "options: {language: english}}}",
        ],
    )
    assert list(runner.corpora) == ["iemocap", "casia", "emodb", "esd"]
    esd = runner.downstream_overrides(0, "esd", "classifier")
    assert (esd["reader"], esd["data_folder"]) == ("esd", "/data/ESD")
    assert esd["reader_options"] == {"language": "english"}
