"""``sercl analyze`` on a finished tiny experiment: every figure of the
report exists and is a PNG that reads back, the layer-similarity table has
every layer of both models, and the report states what it must."""

import csv
import re
import shutil

import pytest

from speechbrain_sercl import __version__
from speechbrain_sercl.cli import main as sercl

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY_LAYERS = 2  # the tiny WavLM's transformer layers


def figure_links(report):
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.read_text())


def test_the_demo_ends_with_the_report(experiment):
    report = experiment / "paper" / "report.md"
    assert report.is_file()
    assert figure_links(report)


def test_sercl_analyze_writes_every_figure_as_a_png(experiment):
    import matplotlib.image

    protocol = experiment / "paper"
    (protocol / "report.md").unlink(missing_ok=True)
    shutil.rmtree(protocol / "analysis", ignore_errors=True)
    assert sercl(["analyze", str(experiment), "--max-utterances", "6"]) == 0
    report = protocol / "report.md"
    links = figure_links(report)
    names = sorted(path.split("/")[-1] for path in links)
    assert names == [
        "confusion_casia_classifier.png",
        "confusion_casia_finetune.png",
        "confusion_iemocap_classifier.png",
        "confusion_iemocap_finetune.png",
        "fold_0_embedding_map.png",
        "fold_0_layer_similarity.png",
        "fold_0_training_curves.png",
    ]
    for link in links:
        path = protocol / link
        assert path.read_bytes()[:8] == PNG_SIGNATURE, link
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and min(image.shape[:2]) > 100, link
    text = report.read_text()
    assert f"speechbrain-sercl {__version__}" in text
    assert "- seed: `1986`" in text and "- protocol: `paper`" in text
    assert "| iemocap | two-stage contrastive (stage 2) |" in text
    assert "12 held-out utterances of run 0 (casia, iemocap)" in text


def test_the_layer_table_has_every_layer_of_both_models(experiment):
    path = experiment / "paper" / "analysis" / "fold_0_layer_similarity.csv"
    if not path.exists():
        assert sercl(["analyze", str(experiment / "paper")]) == 0
    with open(path, newline="") as table:
        rows = list(csv.DictReader(table))
    assert [(row["model"], int(row["layer"])) for row in rows] == [
        (model, layer)
        for model in ("before", "after")
        for layer in range(TINY_LAYERS + 1)
    ]
    for row in rows:
        gap = float(row["positive"]) - float(row["negative"])
        assert float(row["gap"]) == pytest.approx(gap)


def test_analyze_refuses_a_folder_without_runs(tmp_path, capsys):
    assert sercl(["analyze", str(tmp_path)]) == 1
    assert "holds no run" in capsys.readouterr().err
    (tmp_path / "paper" / "fold_0").mkdir(parents=True)
    assert sercl(["analyze", str(tmp_path), "--run", "3"]) == 1
    assert "run 3" in capsys.readouterr().err
