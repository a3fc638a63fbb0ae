"""What version 0.1 wrote and showed keeps working after the modules moved.

Version 0.1 kept every module at the package root. Its YAMLs, its README
and every model it exported name those paths. The old export template is
kept as it was (``data/inference_template_v0_1.yaml``), and the paths
below are copied from 0.1's YAMLs and README, not derived from the code
that maps them.
"""

import importlib
import pydoc
import re
import shutil
import subprocess
import sys
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from export_fixtures import write_tiny_export

from speechbrain_sercl._moved import MOVED
from speechbrain_sercl.cli import main
from speechbrain_sercl.config import read_config, shipped_hparams
from speechbrain_sercl.fingerprints import digest, placeholders, settings_of
from speechbrain_sercl.inference.hparams_trust import export_problems
from speechbrain_sercl.inference.predict import load_classifier
from speechbrain_sercl.protocol.overrides import declared_keys

OLD_TEMPLATE = Path(__file__).parent / "data" / "inference_template_v0_1.yaml"
HPARAMS_V0_1 = Path(__file__).parent / "data" / "hparams_v0_1"
# 0.1's export targets -> where they live now.
EXPORT_TARGETS = {
    "speechbrain_sercl.backbone.materialise_from_config": (
        "speechbrain_sercl.method.model_folders.materialise_from_config"
    ),
    "speechbrain_sercl.backbone.SSLBackbone": (
        "speechbrain_sercl.method.backbone.SSLBackbone"
    ),
    "speechbrain_sercl.pooling.AttentionPooling": (
        "speechbrain_sercl.method.pooling.AttentionPooling"
    ),
    "speechbrain_sercl.embedding.KeepFeatures": (
        "speechbrain_sercl.method.embedding.KeepFeatures"
    ),
    "speechbrain_sercl.embedding.EmotionEmbedding": (
        "speechbrain_sercl.method.embedding.EmotionEmbedding"
    ),
    "speechbrain_sercl.classifier.EmotionClassifier": (
        "speechbrain_sercl.method.head.EmotionClassifier"
    ),
}
# The other targets of 0.1's shipped YAMLs.
YAML_TARGETS = {
    "speechbrain_sercl.brains.ClassifierBrain": (
        "speechbrain_sercl.method.brains.ClassifierBrain"
    ),
    "speechbrain_sercl.brains.FineTuneBrain": (
        "speechbrain_sercl.method.brains.FineTuneBrain"
    ),
    "speechbrain_sercl.losses.CrossCorpusContrastiveLoss": (
        "speechbrain_sercl.method.losses.CrossCorpusContrastiveLoss"
    ),
    "speechbrain_sercl.schedulers.MultiStepScheduler": (
        "speechbrain_sercl.method.schedulers.MultiStepScheduler"
    ),
    "speechbrain_sercl.runner.FoldRunner": (
        "speechbrain_sercl.protocol.runner.FoldRunner"
    ),
    "speechbrain_sercl.runner.read_config": (
        "speechbrain_sercl.config.read_config"
    ),
    "speechbrain_sercl.report.write_predictions": (
        "speechbrain_sercl.predictions.write_predictions"
    ),
    "speechbrain_sercl.backbone.resolve_source": (
        "speechbrain_sercl.method.sources.resolve_source"
    ),
    "speechbrain_sercl.backbone.TINY_MODELS": (
        "speechbrain_sercl.method.tiny.TINY_MODELS"
    ),
    "speechbrain_sercl.run_report.write_report": (
        "speechbrain_sercl.reporting.report.write_report"
    ),
}


@pytest.mark.parametrize("old", sorted({**EXPORT_TARGETS, **YAML_TARGETS}))
def test_an_old_path_names_the_same_object(old):
    new = {**EXPORT_TARGETS, **YAML_TARGETS}[old]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        found = pydoc.locate(old)
    assert found is not None and found is pydoc.locate(new)


def test_an_old_import_warns_naming_the_new_module():
    code = (
        "import warnings; warnings.simplefilter('error');"
        "from speechbrain_sercl.pooling import AttentionPooling"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert result.stderr.splitlines()[-1] == (
        "DeprecationWarning: speechbrain_sercl.pooling is now "
        "speechbrain_sercl.method.pooling"
    )


def test_a_name_that_moved_nowhere_names_the_new_modules():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import speechbrain_sercl.runner as old_runner
    with pytest.raises(AttributeError) as error:
        _ = old_runner.RECIPES
    assert str(error.value) == (
        "speechbrain_sercl.runner.RECIPES is gone: speechbrain_sercl.runner "
        "moved to speechbrain_sercl.protocol.runner, speechbrain_sercl.config,"
        " speechbrain_sercl.method.registry, and none of them has 'RECIPES'"
    )


def _without_comments(text):
    return [line for line in text.splitlines() if not line.startswith("#")]


def _old_spelling(text):
    for old, new in EXPORT_TARGETS.items():
        text = re.sub(rf"\b{re.escape(new)}\b", old, text)
    return text


def test_the_template_changed_only_its_targets():
    current = (
        resources.files("speechbrain_sercl") / "templates" / "inference.yaml"
    ).read_text(encoding="utf-8")
    assert _without_comments(_old_spelling(current)) == _without_comments(
        OLD_TEMPLATE.read_text(encoding="utf-8")
    )


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The same tiny model exported by 0.1 and by this version."""
    root = tmp_path_factory.mktemp("exports")
    new = write_tiny_export(
        root / "new", ["angry", "sad"], root / "speech_models"
    )
    old = shutil.copytree(new, root / "old")
    text = (new / "hyperparams.yaml").read_text(encoding="utf-8")
    (old / "hyperparams.yaml").write_text(_old_spelling(text))
    return old, new


def test_an_export_of_version_0_1_loads_without_trust(exports, tmp_path):
    old, new = exports
    text = (old / "hyperparams.yaml").read_text(encoding="utf-8")
    assert "speechbrain_sercl.pooling.AttentionPooling" in text
    assert export_problems(text) == []
    wav = tmp_path / "a.wav"
    sf.write(wav, np.random.default_rng(0).normal(0, 0.1, 16000), 16000)
    signal = torch.from_numpy(sf.read(wav, dtype="float32")[0])[None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        probabilities = [
            load_classifier(folder).classify_batch(signal)[0]
            for folder in (old, new)
        ]
    assert torch.equal(*probabilities)
    status = main(["predict", str(wav), "--model", str(old)])
    assert status == 0


def test_an_old_target_in_another_place_is_refused(exports):
    old, _ = exports
    text = (old / "hyperparams.yaml").read_text(encoding="utf-8")
    swapped = text.replace(
        "!new:speechbrain_sercl.pooling.AttentionPooling",
        "!new:speechbrain_sercl.classifier.EmotionClassifier",
    )
    assert export_problems(swapped) == [
        "line 33: pooling: !new:speechbrain_sercl.classifier.EmotionClassifier"
        " where an export has "
        "!new:speechbrain_sercl.method.pooling.AttentionPooling"
    ]


# Settings a shipped YAML gained since 0.1, with their values: the steps of
# 0.1 made with it are no longer the same steps. The demo's speech source
# (its 0.1 steps were also made from an older tiny model, which the fold
# runner's speech_model tells apart).
ADDED_SINCE_0_1 = {"demo": {"demo_speech": "synthetic"}}


@pytest.mark.parametrize("name", sorted(p.stem for p in HPARAMS_V0_1.iterdir()))
def test_a_step_of_0_1_is_recorded_as_the_same_step_now(name):
    """0.1's shipped YAMLs, kept as they were, name their targets by the
    old paths and the run ``fold``: a step made by one of them must have
    the settings and the digest the same step has now, so that the steps
    an experiment of 0.1 finished stay done (but for the settings added
    since, :data:`ADDED_SINCE_0_1`)."""

    def settings(path):
        overrides = placeholders(declared_keys(path))
        return settings_of(read_config(path, overrides), ["--device=cpu"])

    old = settings(HPARAMS_V0_1 / f"{name}.yaml")
    new = settings(shipped_hparams(name))
    added = ADDED_SINCE_0_1.get(name, {})
    assert {key: new.pop(key, None) for key in added} == added
    assert old == new
    if not added:
        assert digest(old) == digest(new)
    moved = "!new:speechbrain_sercl.method."  # not a vacuous comparison
    assert moved in Path(shipped_hparams(name)).read_text(encoding="utf-8")


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_name_means_one_object_in_the_modules_of_a_0_1_module(old):
    """Step records spell a target by its 0.1 module: the modules that
    share one 0.1 module must not give one name to two objects, or a
    record could not tell them apart."""
    found = {}
    for successor in MOVED[old]:
        module = importlib.import_module(f"speechbrain_sercl.{successor}")
        for name, value in vars(module).items():
            if not name.startswith("_"):
                found.setdefault(name, []).append(value)
    for name, values in found.items():
        assert all(value is values[0] for value in values), (old, name)
