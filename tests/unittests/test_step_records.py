"""Step records: the settings a fingerprint holds, what a model card
quotes, and a protocol folder of an older version.

The fold runner's use of step records (a changed step stops the run, a
damaged output reruns its step, stale steps are left out of the results)
is tested with light steps in ``test_runner.py``; what a step's data is
made of, in ``test_release.py``.
"""

import json
import os

import pytest

from speechbrain_sercl import layout
from speechbrain_sercl.cli import main
from speechbrain_sercl.config import read_config, shipped_hparams
from speechbrain_sercl.fingerprints import placeholders, settings_of
from speechbrain_sercl.inference.export import model_card
from speechbrain_sercl.protocol.overrides import declared_keys
from speechbrain_sercl.step_records import (
    checked_steps,
    expected_record,
    finish_step,
    start_step,
)


def resolved_settings(method, overrides):
    path = shipped_hparams(method)
    config = read_config(
        path, {**overrides, **placeholders(declared_keys(path))}
    )
    return settings_of(config)


def test_settings_hold_what_changes_results_and_no_location():
    base = {"corpus": "casia", "data_folder": "/data/CASIA"}
    settings = resolved_settings("classifier", base)
    moved = {
        "corpus": "iemocap",
        "data_folder": "/elsewhere/IEMOCAP",
        "experiment_folder": "/experiments/other",
        "prepared_folder": "/prepared",
        "pretrained_folder": "/cache",
        "run": 3,
    }
    assert resolved_settings("classifier", moved) == settings
    text = json.dumps(resolved_settings("classifier", moved))
    assert not [value for value in moved.values() if f'{value}"' in text]
    for changed in ({"lr": 0.1}, {"seed": 7}, {"ssl_source": "tiny-hubert"}):
        assert resolved_settings("classifier", {**base, **changed}) != settings


def write_step(folder, trained_as_of):
    """A finished FT step of run 0 with a record."""
    os.makedirs(folder)
    report = {"UA": 0.5, "WA": 0.5, "confusion": [[1, 1], [0, 2]]}
    (folder / layout.TEST_REPORT_FILE).write_text(json.dumps(report))
    fingerprint = {"step": "finetune", "run": 0, "settings": trained_as_of}
    expected = expected_record(fingerprint, {})
    start_step(folder, expected)
    finish_step(folder, expected, [layout.TEST_REPORT_FILE])
    return expected["trained_as"]


@pytest.mark.parametrize(
    "results_made_as, quoted",
    [("this step", True), ("other settings", False), (None, False)],
)
def test_the_model_card_quotes_results_of_steps_made_alike(
    tmp_path, results_made_as, quoted
):
    step_folder = tmp_path / "exp" / "paper" / "fold_0" / "casia" / "finetune"
    trained_as = write_step(step_folder, {"lr": 0.1})
    summary = {
        "folds": {"0": {}, "1": {}},
        "mean": {"UA": 0.625, "WA": 0.6},
        "std": {"UA": 0.125, "WA": 0.1},
    }
    if results_made_as is not None:
        other = write_step(tmp_path / "other", {"lr": 0.2})
        summary["trained_as"] = (
            trained_as if results_made_as == "this step" else other
        )
    results = tmp_path / "exp" / "paper" / layout.RESULTS_JSON
    results.write_text(json.dumps({"casia": {"finetune": summary}}))
    step = {
        "step_folder": str(step_folder),
        "corpus": "casia",
        "method": "finetune",
        "protocol": "paper",
        "run": 0,
        "ssl_source": "tiny-wavlm",
        "seed": 1,
    }
    card = model_card(step, {"model_type": "wavlm", "hidden_size": 8}, ["a"])
    assert ("UA 62.50 ± 12.50" in card) == quoted
    assert ("so none is quoted" in card) != quoted


def test_steps_of_an_older_version_are_not_reported(tmp_path, capsys):
    step = tmp_path / "exp" / "paper" / "fold_0" / "casia" / "finetune"
    os.makedirs(step)
    (step / layout.PREDICTIONS_FILE).write_text(
        "id,corpus,speaker,emotion,predicted,p_a\nu1,casia,s,a,a,1.0\n"
    )
    fingerprints = tmp_path / "exp" / "paper" / layout.STEP_FINGERPRINTS_FILE
    with pytest.raises(FileNotFoundError, match="--retrain-changed"):
        checked_steps(tmp_path / "exp" / "paper")
    assert main(["analyze", str(tmp_path / "exp")]) == 1
    assert capsys.readouterr().err == (
        f"sercl analyze: error: {fingerprints} is missing: the steps of "
        f"{tmp_path / 'exp' / 'paper'} were made by an older version of "
        "sercl (or by hand) and cannot be checked; rerun `sercl folds` with "
        "this experiment's settings and --retrain-changed\n"
    )
