"""Each run trains only on its training parts, and stage 2 on stage 1.

One tiny stage-1 run (the real command, on the demo's synthetic corpora)
of run 4 of the ``speaker`` protocol: IEMOCAP has 5 session folds and
CASIA 4 speaker folds, so run 4 tests IEMOCAP's fold 4 and CASIA's fold 0.
The datasets of stage 1, stage 2 and FT are then built in-process by the
recipes' own ``dataio_prep`` from their YAMLs, and their utterance ids are
compared with the folds file's assignment; stage 2 is trained in-process
from the stage-1 files, which must reach it whole and bit for bit.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_sercl.data.corpora import prepare_run
from speechbrain_sercl.method.brains import ClassifierBrain

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "speechbrain_sercl"
RECIPES = PACKAGE / "recipes" / "CrossCorpus"
HPARAMS = PACKAGE / "hparams"

PROTOCOL, RUN = "speaker", 4
FOLD_COUNTS = {"iemocap": 5, "casia": 4}
# corpus -> (reader, release folder under the demo data folder)
DEMO_CORPORA = {
    "iemocap": ("synthetic_iemocap", "IEMOCAP_full_release"),
    "casia": ("synthetic_casia", "CASIA"),
}
UTTERANCES_PER_EMOTION = 2
# Every step uses the random tiny model (the demo's default, the
# pretrained one, is twice as wide).
TINY = {
    "batch_size": 8,
    "crop_seconds": 1.0,
    "number_of_epochs": 1,
    "ssl_source": "tiny-wavlm",
    "hidden_size": 32,
}

pytestmark = pytest.mark.slow


def load_recipe(name):
    """A recipe script as a module (its ``__main__`` block does not run)."""
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe


def stage1_overrides(experiment, data):
    return {
        "experiment_folder": str(experiment),
        "demo_data_folder": str(data),
        "data_utterances_per_emotion": UTTERANCES_PER_EMOTION,
        "batches_per_epoch": 4,
        "protocol": PROTOCOL,
        "run": RUN,
        **TINY,
    }


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """(experiment folder, data folder) of a finished tiny stage-1 run."""
    root = tmp_path_factory.mktemp("isolation")
    experiment, data = root / "experiment", root / "data"
    options = stage1_overrides(experiment, data)
    command = [
        sys.executable,
        str(RECIPES / "train_contrastive.py"),
        str(HPARAMS / "demo.yaml"),
        *(f"--{key}={value}" for key, value in options.items()),
        "--noprogressbar",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return experiment, data


def load_yaml(name, overrides):
    with open(HPARAMS / f"{name}.yaml", encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    Path(hparams["output_folder"]).mkdir(parents=True, exist_ok=True)
    return hparams


def downstream_hparams(method, corpus, experiment, data, **extra):
    """A stage-2 or FT YAML as the fold runner fills it for the demo."""
    reader, release = DEMO_CORPORA[corpus]
    return load_yaml(
        method,
        {
            "corpus": corpus,
            "data_folder": str(data / release),
            "reader": reader,
            "reader_options": {
                "seed": 0,
                "utterances_per_speaker_emotion": UTTERANCES_PER_EMOTION,
            },
            "experiment_folder": str(experiment),
            "prepared_folder": str(experiment / "prepared"),
            "protocol": PROTOCOL,
            "run": RUN,
            "pretrained_folder": str(experiment / "pretrained"),
            "num_workers": 0,
            **TINY,
            **extra,
        },
    )


def prepared_corpus(experiment, corpus):
    """(manifest ids, held-out ids of run RUN) from the prepared files.

    Every step must share the one prepared copy of each corpus.
    """
    (folder,) = (experiment / "prepared").glob(f"{corpus}-*")
    manifest = json.loads((folder / "manifest.json").read_text())
    folds = json.loads((folder / f"folds_{PROTOCOL}.json").read_text())
    assignment = folds["assignment"]
    assert set(assignment) == set(manifest)
    assert set(assignment.values()) == set(range(FOLD_COUNTS[corpus]))
    fold = RUN % FOLD_COUNTS[corpus]
    held_out = {utt for utt, index in assignment.items() if index == fold}
    assert held_out
    return set(manifest), held_out


def all_held_out(experiment):
    return set().union(
        *(prepared_corpus(experiment, c)[1] for c in FOLD_COUNTS)
    )


def test_stage1_trains_only_on_the_training_parts(stage1):
    experiment, data = stage1
    hparams = load_yaml("demo", stage1_overrides(experiment, data))
    split = prepare_run(hparams)
    recipe = load_recipe("train_contrastive")
    train_data, sampler = recipe.dataio_prep(hparams, split)

    held_out = all_held_out(experiment)
    training = set().union(
        *(prepared_corpus(experiment, c)[0] for c in FOLD_COUNTS)
    )
    training -= held_out
    assert set(train_data.data_ids) == training
    assert len(train_data.data_ids) == len(training)
    for epoch in range(1, hparams["number_of_epochs"] + 1):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == hparams["batches_per_epoch"]
        for batch in batches:
            ids = {train_data.data_ids[index] for index in batch}
            assert ids and not ids & held_out

    written = json.loads(
        (Path(hparams["output_folder"]) / "fold_split.json").read_text()
    )
    for corpus in FOLD_COUNTS:
        assert set(written[corpus]["test"]) == set(
            prepared_corpus(experiment, corpus)[1]
        )


@pytest.mark.parametrize("corpus", sorted(FOLD_COUNTS))
@pytest.mark.parametrize("method", ["classifier", "finetune"])
def test_downstream_tests_on_the_held_out_fold_only(stage1, method, corpus):
    experiment, data = stage1
    hparams = downstream_hparams(method, corpus, experiment, data)
    split = prepare_run(hparams)
    recipe = load_recipe("train_classifier")
    hparams["label_encoder"] = recipe.label_encoder_prep(hparams, split)
    recipe.load_stage1(hparams)  # stage 2's feature cache needs its weights
    brain = recipe_brain(hparams, hparams["brain_class"])
    train_data, test_data = recipe.dataio_prep(hparams, split, brain)

    manifest_ids, held_out = prepared_corpus(experiment, corpus)
    assert set(test_data.data_ids) == held_out
    assert set(train_data.data_ids) == manifest_ids - held_out
    assert not set(train_data.data_ids) & all_held_out(experiment)
    assert len(test_data.data_ids) == len(held_out)


def encoder_folder(experiment):
    return experiment / PROTOCOL / f"fold_{RUN}" / "contrastive" / "encoder"


def stage1_files(experiment):
    """The state dicts stage 1 wrote, by module name."""
    folder = encoder_folder(experiment)
    return {
        name: torch.load(folder / f"{name}.ckpt", map_location="cpu")
        for name in ("ssl", "pooling")
    }


def states(modules):
    """Copies of the state dicts of the speech model and the pooling."""
    return {
        name: {
            key: value.detach().clone()
            for key, value in modules[name].state_dict().items()
        }
        for name in ("ssl", "pooling")
    }


def differing_keys(state, reference):
    """Keys on one side only, or whose tensors differ in value or dtype."""
    return sorted(
        key
        for key in state.keys() | reference.keys()
        if key not in state
        or key not in reference
        or state[key].dtype != reference[key].dtype
        or not torch.equal(state[key], reference[key])
    )


class StartRecordingBrain(ClassifierBrain):
    """Keeps the speech model and pooling as they are when training starts."""

    def on_fit_start(self):
        super().on_fit_start()
        self.at_start = states(self.modules)


def recipe_brain(hparams, brain_class):
    """The Brain the stage-2 / FT recipe builds from its YAML."""
    return brain_class(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"noprogressbar": True},
        checkpointer=hparams["checkpointer"],
    )


def test_stage2_starts_from_stage1_and_keeps_its_speech_model(stage1):
    experiment, data = stage1
    # IEMOCAP: its 16 kHz files need no resampling (CASIA's are 22.05 kHz).
    hparams = downstream_hparams("classifier", "iemocap", experiment, data)
    split = prepare_run(hparams)
    recipe = load_recipe("train_classifier")
    hparams["label_encoder"] = recipe.label_encoder_prep(hparams, split)
    files = stage1_files(experiment)
    built = states(hparams)
    # Stage 1 trained both: loading them is what makes them equal.
    assert differing_keys(built["ssl"], files["ssl"])
    assert differing_keys(built["pooling"], files["pooling"])

    recipe.load_stage1(hparams)
    brain = recipe_brain(hparams, StartRecordingBrain)
    train_data, _ = recipe.dataio_prep(hparams, split, brain)
    brain.fit(
        hparams["epoch_counter"],
        train_data,
        train_loader_kwargs={"batch_size": 8, "num_workers": 0},
    )
    assert differing_keys(brain.at_start["ssl"], files["ssl"]) == []
    assert differing_keys(brain.at_start["pooling"], files["pooling"]) == []
    trained = states(brain.modules)
    assert differing_keys(trained["ssl"], files["ssl"]) == []
    assert differing_keys(trained["pooling"], files["pooling"])


@pytest.mark.parametrize("module", ["ssl", "pooling"])
@pytest.mark.parametrize("change", ["unexpected", "missing"])
def test_stage2_refuses_a_stage1_file_whose_keys_differ(
    stage1, tmp_path, module, change
):
    experiment, data = stage1
    copy = tmp_path / "experiment"
    shutil.copytree(encoder_folder(experiment), encoder_folder(copy))
    path = encoder_folder(copy) / f"{module}.ckpt"
    state = torch.load(path, map_location="cpu")
    if change == "unexpected":
        key = "extra.weight"
        state[key] = torch.zeros(1)
    else:
        key = sorted(state)[0]
        del state[key]
    torch.save(state, path)
    hparams = downstream_hparams(
        "classifier", "casia", experiment, data, experiment_folder=str(copy)
    )
    recipe = load_recipe("train_classifier")
    with pytest.raises(RuntimeError) as error:
        recipe.load_stage1(hparams)
    message = str(error.value)
    assert os.path.realpath(path) in message
    assert f"{change} keys [{key!r}]" in message
