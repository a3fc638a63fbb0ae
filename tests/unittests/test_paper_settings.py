"""The recipe YAMLs hold the paper's settings.

Every value below is written out from the paper (not read from the code);
each YAML is loaded as users run it, only the speech model swapped for a
tiny one (its hidden size 32 is not used: the pooling and the classifier
are built at the YAML's 768 and never run), and the objects it builds are
checked. The learning rates of every parameter group, epoch by epoch, are
checked in ``test_schedules.py``.
"""

import importlib.util
from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.epoch_loop import EpochCounter

from speechbrain_sercl.data.folds import FoldSplit
from speechbrain_sercl.method.losses import CrossCorpusContrastiveLoss

REPO = Path(__file__).resolve().parents[2]
HPARAMS = REPO / "speechbrain_sercl" / "hparams"
STAGE1_SCRIPT = (
    REPO
    / "speechbrain_sercl"
    / "recipes"
    / "CrossCorpus"
    / "train_contrastive.py"
)

# The paper: Adam, N = 32 everywhere; 50 epochs (stage 1), 10 (stage 2),
# 50 (FT); tau = 0.07, alpha = 0.5, m = 0.4; 768 -> 256 -> ReLU -> classes.
BATCH_SIZE = 32
EPOCHS = {"wavlm": 50, "hubert": 50, "classifier": 10, "finetune": 50}
TEMPERATURE, ALPHA, MARGIN = 0.07, 0.5, 0.4
HIDDEN_SIZE, CLASSIFIER_HIDDEN_SIZE = 768, 256
CLASSES = {"iemocap": 4, "casia": 6}

STAGE1 = ["wavlm", "hubert"]
DOWNSTREAM = ["classifier", "finetune"]


def load_yaml(name, tmp_path, corpus="iemocap"):
    """A recipe YAML with a tiny speech model and placeholder folders."""
    overrides = {
        "ssl_source": "tiny-wavlm",
        "pretrained_folder": str(tmp_path / "pretrained"),
        "experiment_folder": str(tmp_path / "experiment"),
    }
    if name in STAGE1:
        overrides.update(
            data_folder_iemocap="unused", data_folder_casia="unused"
        )
    else:
        overrides.update(corpus=corpus, data_folder="unused")
    with open(HPARAMS / f"{name}.yaml", encoding="utf-8") as fin:
        return load_hyperpyyaml(fin, overrides)


@pytest.mark.parametrize("name", STAGE1 + DOWNSTREAM)
def test_every_yaml_trains_with_adam_for_the_papers_epochs(name, tmp_path):
    hparams = load_yaml(name, tmp_path)
    optimizer = hparams["opt_class"]([torch.nn.Parameter(torch.zeros(1))])
    assert type(optimizer) is torch.optim.Adam
    # Adam as published: no weight decay, default moments.
    assert optimizer.defaults["weight_decay"] == 0
    assert optimizer.defaults["betas"] == (0.9, 0.999)
    assert hparams["batch_size"] == BATCH_SIZE
    counter = hparams["epoch_counter"]
    assert isinstance(counter, EpochCounter)
    assert counter.limit == EPOCHS[name]
    assert list(counter) == list(range(1, EPOCHS[name] + 1))
    # The paper's freeze policy: the CNN and the projection stay frozen.
    assert not hparams["ssl"].train_front_end


@pytest.mark.parametrize("name", STAGE1)
def test_stage1_loss_and_batches_follow_the_paper(name, tmp_path):
    hparams = load_yaml(name, tmp_path)
    loss = hparams["contrastive_loss"]
    assert type(loss) is CrossCorpusContrastiveLoss
    assert (loss.temperature, loss.alpha, loss.margin) == (
        TEMPERATURE,
        ALPHA,
        MARGIN,
    )
    sampler = stage1_sampler(hparams)
    assert sampler.batch_size == BATCH_SIZE
    assert sampler.num_positives == sampler.num_negatives == BATCH_SIZE // 2
    assert hparams["pooling"].score.weight.shape == (1, HIDDEN_SIZE)


def stage1_sampler(hparams):
    """The batch sampler the stage-1 recipe builds for ``hparams``."""
    spec = importlib.util.spec_from_file_location("stage1", STAGE1_SCRIPT)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    manifest = {
        f"{corpus}{i}": {
            "wav": "never-read.wav",
            "corpus": corpus,
            "emotion": ["sad", "angry"][i % 2],
            "speaker": "s",
        }
        for corpus in CLASSES
        for i in range(40)
    }
    train_ids = {c: [u for u in manifest if u.startswith(c)] for c in CLASSES}
    split = FoldSplit(manifest, train_ids, dict.fromkeys(CLASSES, []))
    _, sampler = recipe.dataio_prep(hparams, split)
    return sampler


@pytest.mark.parametrize("corpus", sorted(CLASSES))
@pytest.mark.parametrize("name", DOWNSTREAM)
def test_classifier_is_768_256_relu_classes(name, corpus, tmp_path):
    hparams = load_yaml(name, tmp_path, corpus)
    layers = list(hparams["classifier"].layers)
    assert [type(layer) for layer in layers] == [
        torch.nn.Linear,
        torch.nn.ReLU,
        torch.nn.Linear,
        torch.nn.LogSoftmax,
    ]
    first, _, second, _ = layers
    assert first.weight.shape == (CLASSIFIER_HIDDEN_SIZE, HIDDEN_SIZE)
    assert second.weight.shape == (CLASSES[corpus], CLASSIFIER_HIDDEN_SIZE)
    assert first.bias is not None and second.bias is not None
    assert hparams["pooling"].score.weight.shape == (1, HIDDEN_SIZE)
