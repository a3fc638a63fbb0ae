"""``sercl prepare`` on hostile releases: names that are not UTF-8, a
release present twice, a preparation that fails half-way."""

import json
import os
import shutil

import pytest
from corpus_fixtures import iemocap_wav_path, write_casia, write_files
from corpus_fixtures import write_iemocap as write_iemocap_release

from speechbrain_sercl.cli import main
from speechbrain_sercl.data import manifest as manifest_module
from speechbrain_sercl.data.manifest import (
    MANIFEST_FILE,
    OPTIONS_FILE,
    REPORT_FILE,
    load_manifest,
)

NOT_UTF8 = "name not valid UTF-8 (bytes shown as \\xNN); rename it to read it"
NOT_UTF8_FOLDER = (
    "folder name not valid UTF-8 (bytes shown as \\xNN): nothing in it is "
    "read; rename it to read it"
)


def raw(path, *names):
    """A path with byte names under ``path`` (names need not be UTF-8)."""
    return os.path.join(os.fsencode(path), *names)


def copy_wav(source, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(source, target)


def saved_files(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_names_that_are_not_utf8_are_skipped_and_listed(tmp_path, capsys):
    root = write_casia(tmp_path / "casia")
    wav = raw(root, b"wangzhe", b"happiness", b"201.wav")
    copy_wav(wav, raw(root, b"wangzhe", b"happiness", b"2\xff02.wav"))
    copy_wav(wav, raw(root, b"sp\xe9aker", b"sad", b"201.wav"))
    save = tmp_path / "save"

    assert main(["prepare", "casia", str(root), str(save)]) == 0

    skipped = [
        [f"{root}/sp\\xe9aker", NOT_UTF8_FOLDER],
        [f"{root}/wangzhe/happiness/2\\xff02.wav", NOT_UTF8],
    ]
    output = capsys.readouterr().out
    listed = [f"  {path}: {reason}" for path, reason in skipped]
    assert "\n".join(["skipped files: 2", *listed]) in output
    report = json.loads((save / REPORT_FILE).read_text(encoding="utf-8"))
    assert report["skipped"] == skipped
    assert len(load_manifest(save / MANIFEST_FILE)) == 11  # CASIA_LAYOUT's
    # The rerun keeps the preparation.
    assert main(["prepare", "casia", str(root), str(save)]) == 0
    assert "(kept: already prepared" in capsys.readouterr().out


def test_iemocap_names_that_are_not_utf8_are_skipped(tmp_path, capsys):
    release = write_iemocap_release(tmp_path)
    utt = "Ses01F_impro01_F000"
    wav = iemocap_wav_path(release, utt)
    bad = raw(wav.parent, b"Ses01F_impro01_F\xff00.wav")
    copy_wav(wav, bad)

    assert main(["prepare", "iemocap", str(release), str(tmp_path / "s")]) == 0

    printable = f"{wav.parent}/Ses01F_impro01_F\\xff00.wav"
    assert f"  {printable}: {NOT_UTF8}\n" in capsys.readouterr().out


def test_a_data_folder_that_is_not_utf8_is_refused(tmp_path, capsys):
    root = raw(tmp_path, b"cas\xe9ia")
    os.rename(write_casia(tmp_path / "casia"), root)
    save = tmp_path / "save"

    assert main(["prepare", "casia", os.fsdecode(root), str(save)]) == 1

    assert capsys.readouterr().err == (
        f"sercl prepare: error: CASIA data_folder {tmp_path}/cas\\xe9ia: the "
        "path is not valid UTF-8 (manifests are UTF-8 JSON); rename it\n"
    )
    assert not save.exists()


def test_a_preparation_that_cannot_be_written_changes_nothing(tmp_path, capsys):
    """Every file is encoded before any is written: an earlier preparation
    stays whole, and no manifest appears where there was none."""
    root = write_casia(tmp_path / "casia")
    save = tmp_path / "save"
    assert main(["prepare", "casia", str(root), str(save)]) == 0
    before = saved_files(save)
    capsys.readouterr()
    name = os.fsdecode(b"c\xff")  # a corpus name the manifest cannot hold

    for folder in (save, tmp_path / "new"):
        argv = ["prepare", "casia", str(root), str(folder)]
        assert main([*argv, "--corpus-name", name]) == 1
        assert capsys.readouterr().err == (
            f"sercl prepare: error: {folder}/{MANIFEST_FILE}: not written: "
            "it would hold text that is not valid UTF-8 ('\\udcff')\n"
        )
    assert saved_files(save) == before
    assert sorted(os.listdir(tmp_path / "new")) == []


def test_a_preparation_cut_short_is_not_taken_for_done(tmp_path, monkeypatch):
    """The options are removed first and written last: a failure between
    the manifest and them makes the next run prepare again."""
    root = write_casia(tmp_path / "casia")
    save = tmp_path / "save"
    assert main(["prepare", "casia", str(root), str(save)]) == 0
    write = manifest_module._write_bytes

    def fail_on_report(data, path):
        if os.path.basename(path) == REPORT_FILE:
            raise OSError(28, "No space left on device")
        write(data, path)

    monkeypatch.setattr(manifest_module, "_write_bytes", fail_on_report)
    argv = ["prepare", "casia", str(root), str(save), "--no-validate-audio"]
    with pytest.raises(OSError, match="No space left"):
        main(argv)
    assert sorted(os.listdir(save)) == [MANIFEST_FILE, REPORT_FILE]
    assert not (save / OPTIONS_FILE).exists()

    monkeypatch.setattr(manifest_module, "_write_bytes", write)
    assert main(argv) == 0
    options = json.loads((save / OPTIONS_FILE).read_text())
    assert options["validate_audio"] is False


RAVDESS_NAMES = [f"03-01-05-02-01-01-{actor:02d}.wav" for actor in (1, 2, 3, 4)]


def _ravdess(names):
    return [f"Actor_{name[-6:-4]}/{name}" for name in names]


# corpus: (reader's name, inner folder, files in it, files beside it);
# every layout is one the reader reads on its own.
TWICE = {
    "ravdess": (
        "RAVDESS",
        "Audio_Speech_Actors_01-24",
        _ravdess(RAVDESS_NAMES[:1]),
        _ravdess(RAVDESS_NAMES),
        "Actor_01, Actor_02, Actor_03 and 1 more",
    ),
    "emodb": ("EmoDB", "wav", ["03a01Fa.wav"], ["08a02Wb.wav"], "08a02Wb.wav"),
    "cremad": (
        "CREMA-D",
        "AudioWAV",
        ["1001_DFA_ANG_XX.wav"],
        ["1002_DFA_SAD_XX.wav"],
        "1002_DFA_SAD_XX.wav",
    ),
    "esd": (
        "ESD",
        "Emotion Speech Dataset",
        ["0011/Angry/0011_000001.wav"],
        ["0012/Sad/0012_000001.wav"],
        "0012",
    ),
}


@pytest.mark.parametrize("corpus", sorted(TWICE))
def test_a_release_present_twice_is_refused(corpus, tmp_path, capsys):
    name, inner, inside, beside, shown = TWICE[corpus]
    root = write_files(tmp_path / corpus, [f"{inner}/{p}" for p in inside])
    save = tmp_path / "save"
    assert main(["prepare", corpus, str(root), str(save)]) == 0  # inner only
    shutil.rmtree(save)
    write_files(root, beside)

    assert main(["prepare", corpus, str(root), str(save)]) == 1

    assert capsys.readouterr().err == (
        f"sercl prepare: error: {name} data_folder {root} holds the release "
        f"twice, in {inner}/ and beside it ({shown}): keep one copy (or give "
        f"{root}/{inner} as data_folder to read that one)\n"
    )
    assert not save.exists()


def test_iemocap_present_twice_is_refused(tmp_path, capsys):
    write_iemocap_release(tmp_path)
    (tmp_path / "Session1").mkdir()

    argv = ["prepare", "iemocap", str(tmp_path), str(tmp_path / "save")]
    assert main(argv) == 1

    error = capsys.readouterr().err
    assert error.startswith(
        f"sercl prepare: error: IEMOCAP data_folder {tmp_path} holds the "
        "release twice, in IEMOCAP_full_release/ and beside it (Session1): "
    )
    assert error.count("\n") == 1


def test_a_report_that_cannot_be_written_leaves_no_new_manifest(tmp_path):
    """A reader (a plug-in's, say) that lists a raw undecodable name: the
    preparation fails naming the report, and the manifest of the earlier
    preparation is still the one on disk, with its report and options."""
    root = write_casia(tmp_path / "casia")
    save = tmp_path / "save"
    assert main(["prepare", "casia", str(root), str(save)]) == 0
    before = saved_files(save)
    wav = str(root / "wangzhe" / "happiness" / "201.wav")
    scan = manifest_module.CorpusScan(
        [manifest_module.Utterance("u1", wav, "happy", "s1", "s1")]
    )
    scan.skip(os.fsdecode(raw(root, b"2\xff02.wav")), "unreadable")

    with pytest.raises(manifest_module.PreparationError) as failed:
        manifest_module.prepare_manifest(scan, "casia", save, {"a": 1})

    assert str(failed.value) == (
        f"{save}/{REPORT_FILE}: not written: it would hold text that is not "
        "valid UTF-8 ('\\udcff')"
    )
    assert saved_files(save) == before


@pytest.mark.parametrize("validate", [True, False])
def test_preparation_lists_a_wav_cut_short(tmp_path, validate):
    root = write_casia(tmp_path / "casia")
    cut = root / "wangzhe" / "happiness" / "201.wav"
    frames = 4000  # FIXTURE_SECONDS at 16 kHz, 16-bit mono
    with open(cut, "r+b") as file:
        file.truncate(cut.stat().st_size - 2 * 1000)
    save = tmp_path / "save"
    argv = ["prepare", "casia", str(root), str(save)]

    assert main(argv + ([] if validate else ["--no-validate-audio"])) == 0

    report = json.loads((save / REPORT_FILE).read_text())
    assert report["warnings"] == [
        f"{cut}: truncated: its header promises {frames} samples, the file "
        f"holds {frames - 1000}"
    ]
    utt = "casia_wangzhe_happy_201"
    assert load_manifest(save / MANIFEST_FILE)[utt]["duration"] == 0.1875
