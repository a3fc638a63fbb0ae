"""A run killed at intra-epoch checkpoints and rerun ends as if never
killed, for stage 1, stage 2 and FT (CPU, tiny sizes).

Each case runs the real command line with ``--ckpt_interval_steps=1``
three times: SIGKILLed right after the checkpoint of step ``KILL_STEP`` of
epoch 1; rerun (it resumes there) and SIGKILLed at the same step of epoch
2; rerun to the end. Each epoch's log line is thus written by a run that
resumed inside that epoch. The whole ``train_log.txt`` (every epoch's
statistics; the test line for stage 2 and FT) and the final weights must
be those of an uninterrupted run, bitwise.

The kill comes from inside the process (a wrapper makes the checkpointer
send SIGKILL to its own process after that checkpoint): an epoch of the
tiny model takes a fraction of a second, too short to aim at from outside,
and the files on disk are those of a kill anywhere before the next
checkpoint.

A kill during a save is the other case: a wrapper makes SpeechBrain's save
hook of modules SIGKILL the process right after it wrote the first module
file of a checkpoint (after the meta file ``CKPT.yaml``), which leaves a
real half-written checkpoint folder; the rerun must ignore it, resume from
the checkpoint before, and end as the uninterrupted run.

Stage 2 builds its feature cache before training (on by default): a kill
while it is being built leaves some entries, and the rerun computes the
others and ends as the uninterrupted run.
"""

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from speechbrain_sercl import layout
from speechbrain_sercl.checkpoints import COMPLETE_MARK, AtomicCheckpointer

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes" / "CrossCorpus"
HPARAMS = REPO / "hparams"
EPOCHS = 2
# Stage 1 and the steps after it use the random tiny model (the demo's
# default, the pretrained one, is twice as wide).
TINY_MODEL = ("--ssl_source=tiny-wavlm", "--hidden_size=32")
KILL_STEP = 2  # of 4 (stage 1) or 5 (stage 2, FT) steps per epoch
TRAINED = {
    "contrastive": ("ssl", "pooling"),
    "classifier": ("pooling", "classifier"),
    "finetune": ("ssl", "pooling", "classifier"),
}

# Runs a recipe (argv[3:]) whose checkpointer kills its own process once it
# has saved the checkpoint of epoch argv[1], step argv[2].
KILL_AFTER_CHECKPOINT = """
import os, runpy, signal, sys
from speechbrain_sercl.checkpoints import AtomicCheckpointer

epoch, step = int(sys.argv[1]), int(sys.argv[2])
sys.argv = sys.argv[3:]
save_checkpoint = AtomicCheckpointer.save_checkpoint

def save_then_die(self, *args, **kwargs):
    checkpoint = save_checkpoint(self, *args, **kwargs)
    counter, brain = self.recoverables["counter"], self.recoverables["brain"]
    if (counter.current, brain.step) == (epoch, step):
        os.kill(os.getpid(), signal.SIGKILL)
    return checkpoint

AtomicCheckpointer.save_checkpoint = save_then_die
runpy.run_path(sys.argv[0], run_name="__main__")
"""

# Runs a recipe (argv[3:]) that SIGKILLs its own process while it saves the
# checkpoint of epoch argv[1], step argv[2]: right after SpeechBrain's save
# hook of modules wrote the first module file (the meta file is written
# before it, the other files and the complete mark after it).
KILL_DURING_CHECKPOINT = """
import os, runpy, signal, sys
import torch
from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS
from speechbrain_sercl.checkpoints import AtomicCheckpointer

epoch, step = int(sys.argv[1]), int(sys.argv[2])
sys.argv = sys.argv[3:]
save_checkpoint = AtomicCheckpointer.save_checkpoint
save_module = DEFAULT_SAVE_HOOKS[torch.nn.Module]
saving = [False]  # the checkpoint to cut is being saved

def save_and_watch(self, *args, **kwargs):
    counter, brain = self.recoverables["counter"], self.recoverables["brain"]
    saving[0] = (counter.current, brain.step) == (epoch, step)
    return save_checkpoint(self, *args, **kwargs)

def save_module_then_die(module, path):
    save_module(module, path)
    if saving[0]:
        os.kill(os.getpid(), signal.SIGKILL)

AtomicCheckpointer.save_checkpoint = save_and_watch
DEFAULT_SAVE_HOOKS[torch.nn.Module] = save_module_then_die
runpy.run_path(sys.argv[0], run_name="__main__")
"""

# Runs a recipe (argv[2:]) that SIGKILLs its own process once it has
# written argv[1] entries of its feature cache.
KILL_WHILE_CACHING = """
import os, runpy, signal, sys
import speechbrain_sercl.method.feature_cache as feature_cache

entries = int(sys.argv[1])
sys.argv = sys.argv[2:]
write_entry = feature_cache._write_entry
written = [0]

def write_entry_then_die(path, hidden):
    write_entry(path, hidden)
    written[0] += 1
    if written[0] == entries:
        os.kill(os.getpid(), signal.SIGKILL)

feature_cache._write_entry = write_entry_then_die
runpy.run_path(sys.argv[0], run_name="__main__")
"""
CACHED_BEFORE_KILL = 3

pytestmark = pytest.mark.slow


def run(command):
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def stage1_command(experiment, data):
    return [
        sys.executable,
        str(RECIPES / "train_contrastive.py"),
        str(HPARAMS / "demo.yaml"),
        f"--experiment_folder={experiment}",
        f"--demo_data_folder={data}",
        "--data_utterances_per_emotion=2",
        "--batches_per_epoch=4",
        "--batch_size=8",
        "--crop_seconds=1.0",
        f"--number_of_epochs={EPOCHS}",
        *TINY_MODEL,
        "--noprogressbar",
    ]


def downstream_command(method, experiment, stage1):
    """Stage 2 or FT on the synthetic CASIA of the stage-1 run ``stage1``."""
    command = [
        sys.executable,
        str(RECIPES / "train_classifier.py"),
        str(HPARAMS / f"{method}.yaml"),
        "--corpus=casia",
        f"--data_folder={stage1['data'] / 'CASIA'}",
        f"--experiment_folder={experiment}",
        f"--prepared_folder={stage1['experiment'] / 'prepared'}",
        *TINY_MODEL,
        f"--pretrained_folder={stage1['experiment'] / 'pretrained'}",
        f"--number_of_epochs={EPOCHS}",
        "--batch_size=8",
        "--crop_seconds=1.0",
        "--num_workers=0",
        "--noprogressbar",
    ]
    if method == "classifier":
        encoder = layout.encoder_folder(stage1["experiment"], "paper", 0)
        command.append(f"--stage1_folder={encoder}")
    return command


def step_folder(method, experiment):
    corpus = None if method == "contrastive" else "casia"
    return Path(layout.step_folder(experiment, "paper", 0, method, corpus))


def final_weights(method, experiment):
    """The trained modules' state dicts at the end of the run."""
    folder = step_folder(method, experiment)
    if method == "contrastive":
        folder = Path(layout.encoder_folder(experiment, "paper", 0))
    else:
        checkpoint = AtomicCheckpointer(layout.save_folder(folder))
        folder = checkpoint.find_checkpoint().path
    return {
        name: torch.load(folder / f"{name}.ckpt", map_location="cpu")
        for name in TRAINED[method]
    }


def newest_checkpoint_position(folder):
    """(epoch, step) of the checkpoint a rerun would resume from."""
    checkpoint = AtomicCheckpointer(layout.save_folder(folder))
    path = checkpoint.find_checkpoint().path
    epoch = int((path / "counter.ckpt").read_text())
    step = yaml.safe_load((path / "brain.ckpt").read_text())["step"]
    return epoch, step


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """An uninterrupted stage-1 run: the stage-1 reference, and the
    encoder, prepared corpora and tiny model of the stage-2 runs."""
    data = tmp_path_factory.mktemp("demo_data")
    experiment = tmp_path_factory.mktemp("stage1")
    run(stage1_command(experiment, data))
    return {"data": data, "experiment": experiment}


@pytest.fixture(scope="module")
def references(stage1, tmp_path_factory):
    """Uninterrupted runs by method, made when first asked for."""
    made = {"contrastive": stage1["experiment"]}

    def reference(method):
        if method not in made:
            experiment = tmp_path_factory.mktemp(f"reference_{method}")
            run(command_for(method, experiment, stage1))
            made[method] = experiment
        return made[method]

    return reference


def command_for(method, experiment, stage1):
    if method == "contrastive":
        return stage1_command(experiment, stage1["data"])
    return downstream_command(method, experiment, stage1)


@pytest.mark.parametrize("method", sorted(TRAINED))
def test_a_run_killed_mid_epoch_resumes_to_the_same_log_and_weights(
    method, stage1, references, tmp_path
):
    reference = references(method)
    experiment = tmp_path / "killed"
    command = [
        *command_for(method, experiment, stage1),
        "--ckpt_interval_steps=1",
    ]
    folder = step_folder(method, experiment)
    for epoch in range(1, EPOCHS + 1):
        run_until_killed(command, epoch, KILL_STEP)
        assert newest_checkpoint_position(folder) == (epoch, KILL_STEP)
        # Every run but the first resumed from its predecessor's checkpoint.
        assert recoveries(folder) == epoch - 1

    run(command)

    check_same_log_and_weights(method, reference, experiment)


def check_same_log_and_weights(method, reference, experiment):
    """The whole train log and the final weights of ``experiment`` are
    those of the uninterrupted run ``reference``, bitwise."""
    log = layout.TRAIN_LOG_FILE
    expected_log = (step_folder(method, reference) / log).read_text()
    assert expected_log.count("\n") == EPOCHS + (method != "contrastive")
    got_log = (step_folder(method, experiment) / log).read_text()
    assert got_log == expected_log
    expected = final_weights(method, reference)
    got = final_weights(method, experiment)
    for module, state in expected.items():
        assert state.keys() == got[module].keys()
        for name, tensor in state.items():
            assert torch.equal(tensor, got[module][name]), (module, name)


def test_a_run_killed_while_saving_a_checkpoint_resumes_as_if_never_killed(
    stage1, references, tmp_path
):
    """Killed between two files of a real checkpoint (stage 1): the
    half-written folder is ignored, then removed, and the rerun resumes
    from the checkpoint before it to the uninterrupted run's log and
    weights."""
    method = "contrastive"
    reference = references(method)
    experiment = tmp_path / "killed"
    command = [
        *command_for(method, experiment, stage1),
        "--ckpt_interval_steps=1",
    ]
    folder = step_folder(method, experiment)
    run_until_killed(command, 1, KILL_STEP + 1, KILL_DURING_CHECKPOINT)
    (unfinished,) = unfinished_checkpoints(folder)
    first_module = TRAINED[method][0]
    files = sorted(path.name for path in unfinished.iterdir())
    assert files == ["CKPT.yaml", f"{first_module}.ckpt"]
    checkpointer = AtomicCheckpointer(layout.save_folder(folder))
    listed = [checkpoint.path for checkpoint in checkpointer.list_checkpoints()]
    assert unfinished not in listed
    assert newest_checkpoint_position(folder) == (1, KILL_STEP)

    run(command)

    assert recoveries(folder) == 1
    assert not unfinished.exists()
    assert unfinished_checkpoints(folder) == []
    check_same_log_and_weights(method, reference, experiment)


def test_a_stage2_run_killed_while_caching_resumes_as_if_never_killed(
    stage1, references, tmp_path
):
    method = "classifier"
    reference = references(method)
    experiment = tmp_path / "killed"
    command = command_for(method, experiment, stage1)
    killer = [sys.executable, "-c", KILL_WHILE_CACHING, str(CACHED_BEFORE_KILL)]
    killed = subprocess.run(
        [*killer, *command[1:]], cwd=REPO, capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    folder = step_folder(method, experiment)
    assert len(cache_entries(folder)) == CACHED_BEFORE_KILL

    run(command)

    expected = cache_entries(step_folder(method, reference))
    assert len(expected) > CACHED_BEFORE_KILL
    assert cache_entries(folder) == expected
    check_same_log_and_weights(method, reference, experiment)


def cache_entries(folder):
    """The feature cache entries of a stage-2 step."""
    cache = Path(layout.feature_cache_folder(layout.save_folder(folder)))
    return sorted(path.name for path in cache.glob("*/*.pt"))


def unfinished_checkpoints(folder):
    """The checkpoint folders of a step without the complete mark."""
    save = Path(layout.save_folder(folder))
    return [
        path
        for path in save.glob("CKPT+*")
        if not (path / COMPLETE_MARK).exists()
    ]


def recoveries(folder):
    """How many times the runs of a step loaded a checkpoint."""
    return (folder / "log.txt").read_text().count("Loading a checkpoint from")


def run_until_killed(command, epoch, step, killer=KILL_AFTER_CHECKPOINT):
    """Run ``command`` (resuming if it can) and SIGKILL it when it saves
    its checkpoint of ``step`` in ``epoch``: right after it (by default),
    or as ``killer`` says."""
    killer = [sys.executable, "-c", killer]
    killed = subprocess.run(
        [*killer, str(epoch), str(step), *command[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
