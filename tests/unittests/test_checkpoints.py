"""Damaged checkpoints are named, skipped when recovering, refused when
exported (:mod:`speechbrain_sercl.checkpoints`).

Each test saves real SpeechBrain checkpoints of a small model and an epoch
counter, then damages a file on disk as a full disk or a cut copy would.
"""

import hashlib
import json
import logging

import pytest
import torch
from speechbrain.utils.epoch_loop import EpochCounter

from speechbrain_sercl import layout
from speechbrain_sercl.checkpoints import (
    COMPLETE_MARK,
    AtomicCheckpointer,
    CheckpointError,
)
from speechbrain_sercl.cli import main


def make_checkpointer(folder, seed=0):
    """A checkpointer of a seeded linear model and an epoch counter."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(64, 8)
    counter = EpochCounter(limit=10)
    recoverables = {"model": model, "counter": counter}
    return AtomicCheckpointer(folder, recoverables), model, counter


def states_equal(first, second):
    return first.keys() == second.keys() and all(
        torch.equal(first[key], second[key]) for key in first
    )


def truncate(path):
    """Cut a file to half its length."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def saved_twice(folder):
    """Checkpoints of epoch 1 and 2, with different weights; the weights
    of each, copied when saved."""
    checkpointer, model, counter = make_checkpointer(folder)
    saved = []
    for epoch in (1, 2):
        counter.current = epoch
        with torch.no_grad():
            model.weight.add_(1.0)
        checkpoint = checkpointer.save_checkpoint(meta={"epoch": epoch})
        saved.append(
            (checkpoint, {k: v.clone() for k, v in model.state_dict().items()})
        )
    return saved


def test_a_truncated_file_is_named_with_its_checkpoint(tmp_path):
    (first, _), (second, _) = saved_twice(tmp_path)
    truncate(second.path / "model.ckpt")
    checkpointer, model, _ = make_checkpointer(tmp_path, seed=1)
    untouched = {k: v.clone() for k, v in model.state_dict().items()}
    expected = (
        f"{second.path}: model.ckpt is not the file saved (truncated or "
        "corrupt)"
    )

    with pytest.raises(CheckpointError) as found:
        checkpointer.find_checkpoint()
    assert str(found.value) == expected
    with pytest.raises(CheckpointError) as loaded:
        checkpointer.load_checkpoint(second)
    assert str(loaded.value) == expected
    # Refused before anything was loaded.
    assert states_equal(model.state_dict(), untouched)


def test_recovery_falls_back_to_the_previous_intact_checkpoint(
    tmp_path, caplog
):
    (first, first_state), (second, _) = saved_twice(tmp_path)
    truncate(second.path / "model.ckpt")
    checkpointer, model, counter = make_checkpointer(tmp_path, seed=1)

    with caplog.at_level(logging.WARNING):
        recovered = checkpointer.recover_if_possible()

    assert recovered.path == first.path
    assert states_equal(model.state_dict(), first_state)
    assert counter.current == 1
    warnings = [
        r.getMessage() for r in caplog.records if r.levelname == "WARNING"
    ]
    assert warnings == [
        f"Skipping a damaged checkpoint: {second.path}: model.ckpt is not "
        "the file saved (truncated or corrupt); recovering from the one "
        "before it, if any"
    ]


def test_a_changed_file_that_still_loads_is_refused(tmp_path):
    """A counter that says epoch 7 loads fine: only the checksum tells."""
    _, (second, _) = saved_twice(tmp_path)
    (second.path / "counter.ckpt").write_text("7")
    checkpointer, _, counter = make_checkpointer(tmp_path, seed=1)

    with pytest.raises(CheckpointError, match=r"counter\.ckpt is not the"):
        checkpointer.find_checkpoint()
    assert checkpointer.recover_if_possible().path != second.path
    assert counter.current == 1


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda path: (path / "model.ckpt").unlink(), "model.ckpt is missing"),
        (
            lambda path: (path / "extra.ckpt").write_text("x"),
            "extra.ckpt was not there when the checkpoint was saved",
        ),
    ],
)
def test_missing_and_added_files_are_named(tmp_path, damage, problem):
    _, (second, _) = saved_twice(tmp_path)
    damage(second.path)
    checkpointer, _, _ = make_checkpointer(tmp_path)
    with pytest.raises(CheckpointError) as found:
        checkpointer.find_checkpoint()
    assert str(found.value) == f"{second.path}: {problem}"


def test_the_mark_lists_every_file_and_its_checksum(tmp_path):
    _, (second, _) = saved_twice(tmp_path)
    mark = json.loads((second.path / COMPLETE_MARK).read_text())
    files = sorted(p for p in second.path.iterdir() if p.name != COMPLETE_MARK)
    assert [p.name for p in files] == [
        "CKPT.yaml",
        "counter.ckpt",
        "model.ckpt",
    ]
    assert mark == {
        "sha256": {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files
        }
    }


def test_a_checkpoint_saved_before_checksums_still_loads(tmp_path):
    _, (second, second_state) = saved_twice(tmp_path)
    (second.path / COMPLETE_MARK).write_text("")  # as the mark was
    checkpointer, model, _ = make_checkpointer(tmp_path, seed=1)

    assert checkpointer.recover_if_possible().path == second.path
    assert states_equal(model.state_dict(), second_state)

    truncate(second.path / "model.ckpt")  # unchecked: loading tells
    with pytest.raises(CheckpointError) as failed:
        checkpointer.recover_if_possible()
    assert str(failed.value).startswith(
        f"{second.path}: loading failed (RuntimeError: "
    )
    assert "\n" not in str(failed.value)


def test_export_refuses_a_damaged_checkpoint_in_one_line(tmp_path, capsys):
    step = layout.step_folder(tmp_path, "paper", 0, "classifier", "casia")
    save = layout.save_folder(step)
    modules = {
        "pooling": torch.nn.Linear(4, 1),
        "classifier": torch.nn.Linear(4, 2),
    }
    checkpoint = AtomicCheckpointer(save, modules).save_checkpoint()
    with open(f"{step}/{layout.HPARAMS_FILE}", "w") as hparams:
        hparams.write(
            "corpus: casia\nprotocol: paper\nfold: 0\nseed: 1\n"
            "ssl_source: tiny-wavlm\n"
        )
    with open(layout.finished_file(step, 0), "w") as report:
        json.dump({}, report)
    truncate(checkpoint.path / "classifier.ckpt")
    output = tmp_path / "model"

    assert main(["export", step, str(output)]) == 1

    assert capsys.readouterr().err == (
        f"sercl export: error: {checkpoint.path}: classifier.ckpt is not the "
        "file saved (truncated or corrupt)\n"
    )
    assert not output.exists()
