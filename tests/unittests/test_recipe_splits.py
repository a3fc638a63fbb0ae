"""Each recipe trains on its run's training part and tests on its test part.

The recipes' data functions are called as the scripts call them, with the
shipped YAMLs (the tiny speech model in place of the base one) and a split
written out here by hand: two corpora, every third utterance held out.
The datasets they return must hold exactly the split's ids: stage 1 the
training ids of every corpus, stage 2 and FT the training and the test ids
of their own corpus, and stage 2 caches features for those same ids. Stage
2 of run 3 loads the speech model and pooling that stage 1 of run 3 wrote
(trained without run 3's test fold), at the path written out below.
"""

import pytest
from brain_fixtures import load_recipe
from hyperpyyaml import load_hyperpyyaml

from speechbrain_sercl.config import shipped_hparams
from speechbrain_sercl.data.folds import FoldSplit

CORPUS_EMOTIONS = {
    "casia": ("angry", "fear", "happy", "neutral", "sad", "surprise"),
    "iemocap": ("angry", "happy", "neutral", "sad"),
}


def load_yaml(name, tmp_path, **overrides):
    """A shipped YAML with the tiny speech model and folders in tmp_path."""
    overrides = {
        "ssl_source": "tiny-wavlm",
        "hidden_size": 32,
        "pretrained_folder": str(tmp_path / "pretrained"),
        "experiment_folder": str(tmp_path / "experiment"),
        **overrides,
    }
    with open(shipped_hparams(name), encoding="utf-8") as stream:
        return load_hyperpyyaml(stream, overrides)


@pytest.fixture
def split():
    """Three utterances of each emotion per corpus; the third held out."""
    manifest, train, test = {}, {}, {}
    for corpus, emotions in CORPUS_EMOTIONS.items():
        for emotion in emotions:
            for index in range(3):
                utt = f"{corpus}_{emotion}_{index}"
                manifest[utt] = {
                    "wav": f"never-read/{utt}.wav",
                    "duration": 1.0 + index,
                    "corpus": corpus,
                    "emotion": emotion,
                    "speaker": f"{corpus}{index}",
                }
                part = test if index == 2 else train
                part.setdefault(corpus, []).append(utt)
    return FoldSplit(manifest, train, test)


def test_stage1_trains_on_every_corpus_training_part_only(split, tmp_path):
    hparams = load_yaml(
        "wavlm",
        tmp_path,
        data_folder_iemocap="unused",
        data_folder_casia="unused",
    )
    train_data, sampler = load_recipe("contrastive").dataio_prep(hparams, split)
    expected = sorted(
        f"{corpus}_{emotion}_{index}"
        for corpus, emotions in CORPUS_EMOTIONS.items()
        for emotion in emotions
        for index in (0, 1)
    )
    assert sorted(train_data.data_ids) == expected
    drawn = {train_data.data_ids[i] for batch in sampler for i in batch}
    assert drawn <= set(expected)


class RecordingBrain:
    """Stands in for the Brain's feature cache: records what it is asked."""

    def __init__(self):
        self.requests = []

    def cached_features(self, manifest, ids, max_seconds=None):
        self.requests.append((list(ids), max_seconds))


@pytest.mark.parametrize("name", ["classifier", "finetune"])
def test_downstream_steps_train_and_test_on_their_corpus_parts(
    name, split, tmp_path
):
    hparams = load_yaml(
        name, tmp_path, corpus="casia", data_folder="unused", run=3
    )
    recipe = load_recipe(name)
    hparams["label_encoder"] = recipe.label_encoder_prep(hparams, split)
    brain = RecordingBrain()
    train_data, test_data = recipe.dataio_prep(hparams, split, brain)
    emotions = CORPUS_EMOTIONS["casia"]
    train = sorted(f"casia_{e}_{i}" for e in emotions for i in (0, 1))
    test = sorted(f"casia_{e}_2" for e in emotions)
    assert sorted(train_data.data_ids) == train
    assert sorted(test_data.data_ids) == test
    requested = [(sorted(ids), seconds) for ids, seconds in brain.requests]
    assert requested == [(train, None), (test, hparams["test_max_seconds"])]


def test_stage2_of_run_3_loads_stage1_of_run_3(tmp_path):
    hparams = load_yaml(
        "classifier", tmp_path, corpus="casia", data_folder="unused", run=3
    )
    encoder = tmp_path / "experiment" / "paper" / "fold_3" / "contrastive"
    encoder = encoder / "encoder"
    assert hparams["pretrainer"].paths == {
        "ssl": str(encoder / "ssl.ckpt"),
        "pooling": str(encoder / "pooling.ckpt"),
    }
