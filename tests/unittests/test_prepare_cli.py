"""Tests for ``sercl prepare`` on tiny corpora in the real layouts."""

import logging
import subprocess
import sys

import pytest
from corpus_fixtures import (
    write_casia,
    write_converted_casia,
    write_files,
    write_iemocap,
)

from speechbrain_sercl.cli import main
from speechbrain_sercl.data.manifest import CANONICAL_EMOTIONS, load_manifest

# The emotion x speaker table of CASIA_LAYOUT, counted by hand
# (Anger, Fearful, happiness, surprised are alias folder names).
CASIA_TABLE = {
    "emotion": ["ZhaoZuoxiang", "liuchanhg", "wangzhe", "total"],
    "neutral": ["1", "0", "0", "1"],
    "happy": ["0", "1", "1", "2"],
    "sad": ["1", "0", "0", "1"],
    "angry": ["1", "2", "0", "3"],
    "fear": ["0", "1", "1", "2"],
    "surprise": ["1", "0", "1", "2"],
    "total": ["4", "4", "3", "11"],
}


def _table(output):
    """The rows of the printed table, keyed by their first cell."""
    rows = {}
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] in {"emotion", *CANONICAL_EMOTIONS, "total"}:
            rows[cells[0]] = cells[1:]
    return rows


def test_prepare_casia_prints_the_table(tmp_path, capsys):
    root = write_casia(tmp_path / "casia")
    (root / "wangzhe" / "sad").mkdir()
    (root / "wangzhe" / "sad" / "209.wav").write_bytes(b"not audio")
    assert main(["prepare", "casia", str(root), str(tmp_path / "save")]) == 0
    output = capsys.readouterr().out
    assert _table(output) == CASIA_TABLE
    assert output.startswith("casia: 11 utterances")
    assert "skipped files: 1" in output
    assert f"{root}/wangzhe/sad/209.wav: unreadable audio" in output
    assert (
        "mapped aliases: Anger -> angry, Fearful -> fear, "
        "happiness -> happy, surprised -> surprise"
    ) in output
    assert len(load_manifest(tmp_path / "save" / "manifest.json")) == 11


def test_prepare_casia_counts_conversions_once(tmp_path, capsys, caplog):
    root = write_converted_casia(tmp_path / "casia")
    argv = ["prepare", "casia", str(root), str(tmp_path / "save")]
    assert main(argv) == 0
    output = capsys.readouterr().out
    assert _table(output) == CASIA_TABLE
    # One line per conversion with its number of files, none per file.
    assert output.count("resampled") == 2
    assert output.count("mixed down") == 1
    clipped = root / "wangzhe" / "Fearful" / "201.wav"
    assert output.endswith(
        "converted on reading to mono 16000 Hz (normal, not a problem):\n"
        "  mixed down from 2 channels: 2 files\n"
        "  resampled from 22050 Hz: 8 files\n"
        "  resampled from 48000 Hz: 1 file\n"
        "warnings: 1\n"
        f"  {clipped}: 66.75% of samples clipped\n"
    )
    warned = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING
    ]
    assert len(warned) == 1 and "66.75% of samples clipped" in warned[0]

    assert main(argv) == 0
    again = capsys.readouterr().out
    assert "(kept: already prepared with the same options)" in again
    assert again.endswith(output[output.index("\nconverted on reading") :])


def test_prepare_iemocap_improvised_only_and_reuse(tmp_path, capsys):
    write_iemocap(tmp_path / "data")
    argv = [
        "prepare",
        "iemocap",
        str(tmp_path / "data"),
        str(tmp_path / "save"),
        "--improvised-only",
    ]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert first.startswith("iemocap: 6 utterances")
    assert "dropped labels: dis 1, fru 1, oth 1, sur 1" in first
    assert "mapped aliases: ang -> angry, exc -> happy" in first
    assert _table(first)["total"] == ["1", "2", "1", "1", "1", "6"]
    assert "kept: already prepared" not in first

    assert main(argv) == 0
    second = capsys.readouterr().out
    assert "(kept: already prepared with the same options)" in second
    assert _table(second) == _table(first)


def test_errors_exit_non_zero_and_write_nothing(tmp_path, capsys):
    save = tmp_path / "save"
    absent = tmp_path / "absent"
    assert main(["prepare", "iemocap", str(absent), str(save)]) == 1
    assert "absent does not exist" in capsys.readouterr().err

    casia = write_casia(tmp_path / "casia")
    assert main(["prepare", "iemocap", str(casia), str(save)]) == 1
    assert "is not an IEMOCAP release" in capsys.readouterr().err

    argv = ["prepare", "casia", str(casia), str(save), "--improvised-only"]
    assert main(argv) == 2
    assert "--improvised-only does not apply to casia" in (
        capsys.readouterr().err
    )
    assert not save.exists()

    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", "msp", str(casia), str(save)])
    assert exit_info.value.code == 2


def test_prepare_esd_language(tmp_path, capsys):
    """--language reaches the ESD reader; a bad one is a clear error."""
    esd = write_files(
        tmp_path / "ESD",
        [
            "0001/Angry/train/0001_000351.wav",
            "0001/Sad/test/0001_001401.wav",
            "0011/Angry/train/0011_000351.wav",
            "0011/Happy/evaluation/0011_000701.wav",
        ],
    )
    save = tmp_path / "save"
    argv = ["prepare", "esd", str(esd), str(save), "--language", "english"]
    assert main(argv) == 0
    manifest = load_manifest(save / "manifest.json")
    assert sorted(e["speaker"] for e in manifest.values()) == ["0011"] * 2

    other = tmp_path / "other"
    argv = ["prepare", "esd", str(esd), str(other), "--language", "german"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "sercl prepare: error:" in error and "'german'" in error
    assert not (other / "manifest.json").exists()

    casia = write_casia(tmp_path / "casia")
    argv = ["prepare", "casia", str(casia), str(other), "--language", "english"]
    assert main(argv) == 2
    assert "--language does not apply to casia" in capsys.readouterr().err


def test_command_runs_as_a_program(tmp_path):
    root = write_casia(tmp_path / "casia", {"wangzhe": {"sad": 2}})
    result = subprocess.run(
        [sys.executable, "-m", "speechbrain_sercl.cli", "prepare", "casia"]
        + [str(root), str(tmp_path / "save")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("casia: 2 utterances")
    assert set(load_manifest(tmp_path / "save" / "manifest.json")) == {
        "casia_wangzhe_sad_201",
        "casia_wangzhe_sad_202",
    }
