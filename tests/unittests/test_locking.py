"""One run per folder: a second run stops at once, a killed one blocks
nothing (:mod:`speechbrain_sercl.protocol.locking`).

The other run is a tiny Python process that holds a folder's lock the way
a run does, until the test kills it or closes its input.
"""

import os
import random
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from speechbrain_sercl import layout
from speechbrain_sercl.cli import main
from speechbrain_sercl.protocol import locking
from speechbrain_sercl.protocol.locking import folder_lock, holder_pid

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "CrossCorpus"
HOLDER = """
import sys
from speechbrain_sercl.protocol.locking import folder_lock

with folder_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes it (or kills this process)
"""


@pytest.fixture
def start_holder():
    """Start processes that hold a folder's lock; end them after the test."""
    started = []

    def start(folder):
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout.readline() == "held\n"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def in_use(folder, pid):
    """The message of a run refused because process ``pid`` holds
    ``folder``."""
    return (
        f"{folder} is in use by process {pid}: one run at a time writes "
        "there; wait for it to end, or stop it"
    )


def demo(output, run=0):
    """``sercl demo`` with the classical floor only (no training step)."""
    return [
        "demo",
        "--output",
        str(output),
        "--runs",
        str(run),
        "--methods",
        "classical",
        "--no-cross-corpus",
        "--data_utterances_per_emotion=2",
    ]


def test_a_second_run_stops_at_once_naming_the_folder_and_the_holder(
    start_holder, tmp_path, capsys
):
    experiment = tmp_path / "demo"
    holder = start_holder(experiment)

    assert main(demo(experiment)) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    expected = in_use(experiment, holder.pid)
    assert captured.err == f"sercl demo: error: {expected}\n"
    # Refused before generating or preparing anything in the folder.
    assert sorted(os.listdir(experiment)) == [
        layout.LOCK_FILE,
        layout.LOCK_HOLDER_FILE,
    ]
    assert holder.poll() is None  # the holder goes on


def test_a_killed_run_blocks_nothing_and_runs_follow_each_other(
    start_holder, tmp_path, capsys
):
    experiment = tmp_path / "demo"
    holder = start_holder(experiment)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert holder_pid(experiment) == holder.pid  # a stale id is left

    # Runs that take the lock, prepare the data, then stop on a run the
    # protocol does not have: the lock is released on an error too.
    beyond = "runs [9] do not exist: this protocol has runs 0 to 4"
    for _ in range(2):  # the same process, twice
        assert main(demo(experiment, run=9)) == 1
        error = capsys.readouterr().err  # the first after progress bars
        assert error.splitlines()[-1] == f"sercl demo: error: {beyond}"
        assert "in use" not in error
        assert holder_pid(experiment) is None  # released
    with folder_lock(experiment):
        assert holder_pid(experiment) == os.getpid()


def test_the_command_holds_the_folder_until_its_report_is_written(
    tmp_path, monkeypatch
):
    """The report and the demo's model come after the runner's last step:
    the lock covers them too (the runner's own block nests inside)."""
    from speechbrain_sercl import cli
    from speechbrain_sercl.protocol.runner import FoldRunner

    experiment = tmp_path / "demo"
    seen = []

    def run(runner):
        with folder_lock(runner.experiment_folder):  # nested: takes nothing
            seen.append(("run", holder_pid(experiment)))
        return [0]

    monkeypatch.setattr(FoldRunner, "run", run)
    for name in ("_show_results", "_try_demo_model"):
        monkeypatch.setattr(
            cli,
            name,
            lambda runner, name=name: seen.append(
                (name, holder_pid(experiment))
            ),
        )

    assert main(demo(experiment)) == 0

    pid = os.getpid()
    assert seen == [
        ("run", pid),
        ("_show_results", pid),
        ("_try_demo_model", pid),
    ]
    assert holder_pid(experiment) is None  # released after the last


def test_the_holder_is_named_only_while_it_runs(start_holder, tmp_path):
    """A holder that has not written its id yet (or a stale id of a killed
    holder) is 'another process', never a wrong id."""
    folder = tmp_path / "run"
    holder = start_holder(folder)
    holder_file = Path(layout.lock_file(folder, layout.LOCK_HOLDER_FILE))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    holder_file.write_text(f"{dead.pid}\n")

    with pytest.raises(RuntimeError) as refused:
        with folder_lock(folder):
            pass

    assert str(refused.value) == in_use(folder, holder.pid).replace(
        f"process {holder.pid}", "another process"
    )


def test_a_recipe_holds_its_step_folder_until_it_ends(tmp_path, monkeypatch):
    """Held for the process's life (taken once), released at exit: the
    exit handler is called here instead of ending the test process."""
    at_exit = []
    monkeypatch.setattr(locking, "_held", {})
    monkeypatch.setattr(
        locking.atexit, "register", lambda *call: at_exit.append(call)
    )
    folder = tmp_path / "step"

    locking.hold_step_folder(folder)
    locking.hold_step_folder(folder)  # held already: kept

    assert holder_pid(folder) == os.getpid()
    ((release, *arguments),) = at_exit
    release(*arguments)
    assert holder_pid(folder) is None  # removed on exit
    with folder_lock(folder):  # and the lock is free
        pass


@pytest.fixture
def keep_random_state():
    """Restore the global generators that a recipe's YAML seeds."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])


@pytest.mark.parametrize(
    ("recipe", "hparams", "method", "corpus"),
    [
        ("train_contrastive.py", "demo.yaml", layout.STAGE1, None),
        ("train_classifier.py", "classifier.yaml", "classifier", "casia"),
        ("train_classifier.py", "finetune.yaml", "finetune", "casia"),
    ],
)
def test_a_recipe_run_by_hand_stops_on_a_step_folder_in_use(
    recipe,
    hparams,
    method,
    corpus,
    start_holder,
    keep_random_state,
    tmp_path,
    monkeypatch,
):
    """The recipe holds its step folder (not the experiment folder, which
    the runner that starts it holds) and stops before writing in it."""
    experiment = tmp_path / "experiment"
    step = layout.step_folder(experiment, "paper", 0, method, corpus)
    holder = start_holder(step)
    argv = [
        str(RECIPES / recipe),
        str(RECIPES.parents[1] / "hparams" / hparams),
        f"--experiment_folder={experiment}",
        f"--pretrained_folder={tmp_path / 'pretrained'}",
        "--ssl_source=tiny-wavlm",
        "--hidden_size=32",
    ]
    if corpus:
        argv += [f"--corpus={corpus}", f"--data_folder={tmp_path / 'data'}"]
    monkeypatch.setattr(sys, "argv", argv)

    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(argv[0], run_name="__main__")

    message = f"FolderLockedError: {in_use(step, holder.pid)}"
    assert stopped.value.code == message
    written = [path.name for path in Path(step).rglob("*") if path.is_file()]
    assert sorted(written) == [layout.LOCK_FILE, layout.LOCK_HOLDER_FILE]
