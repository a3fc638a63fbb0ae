"""Training draws new batches every epoch, in a single process.

SpeechBrain calls ``set_epoch`` only on the sampler it keeps as
``Brain.train_sampler``; a ``batch_sampler`` handed to ``fit`` outside DDP
is not kept there unless ``EmotionBrain.make_dataloader`` does it. A tiny
``ContrastiveBrain`` is trained for two epochs in-process on a few wav
files and the utterance ids of every batch it trains on are recorded.
"""

import numpy as np
import soundfile
import torch
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain.utils.train_logger import FileTrainLogger

from speechbrain_sercl.data.batching import LengthBucketBatchSampler
from speechbrain_sercl.data.pipeline import make_dataset
from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.method.brains import ContrastiveBrain
from speechbrain_sercl.method.losses import CrossCorpusContrastiveLoss
from speechbrain_sercl.method.pooling import AttentionPooling
from speechbrain_sercl.method.sampler import CrossCorpusBatchSampler
from speechbrain_sercl.method.schedulers import MultiStepScheduler

SAMPLE_RATE = 16000
EPOCHS = 2
SAMPLER = {"batch_size": 4, "num_batches": 3, "seed": 7}


class RecordingBrain(ContrastiveBrain):
    """Records the utterance ids of every training batch, per epoch."""

    def compute_forward(self, batch, stage):
        epoch = self.hparams.epoch_counter.current
        self.batches.setdefault(epoch, []).append(list(batch.id))
        return super().compute_forward(batch, stage)


def write_dataset(folder):
    """Sixteen 0.2 s wav files: two corpora, two emotions each."""
    rng = np.random.default_rng(0)
    manifest = {}
    for index in range(16):
        wav = folder / f"u{index}.wav"
        soundfile.write(wav, 0.1 * rng.standard_normal(3200), SAMPLE_RATE)
        manifest[f"u{index}"] = {
            "wav": str(wav),
            "corpus": "a" if index < 8 else "b",
            "emotion": "sad" if index % 2 else "angry",
            "speaker": f"s{index % 4}",
        }
    return make_dataset(manifest, list(manifest))


def make_brain(tmp_path):
    hparams = {
        "contrastive_loss": CrossCorpusContrastiveLoss(),
        "lr_schedule": MultiStepScheduler(1e-3, milestones=[], factor=0.5),
        "lr_scales": {"ssl": 0.4},
        "epoch_counter": EpochCounter(EPOCHS),
        "train_logger": FileTrainLogger(tmp_path / "train_log.txt"),
    }
    modules = {
        "ssl": SSLBackbone("tiny-wavlm", tmp_path / "pretrained"),
        "pooling": AttentionPooling(input_size=32),
    }
    brain = RecordingBrain(
        modules=modules,
        opt_class=torch.optim.Adam,
        hparams=hparams,
        run_opts={"noprogressbar": True},
    )
    brain.batches = {}
    return brain


def sampler_batches(dataset, epoch):
    """The batches of a fresh sampler at ``epoch``, as utterance ids."""
    sampler = CrossCorpusBatchSampler.from_dataset(dataset, **SAMPLER)
    sampler.set_epoch(epoch)
    return [[dataset.data_ids[i] for i in batch] for batch in sampler]


def test_each_epoch_trains_on_that_epochs_batches(tmp_path):
    dataset = write_dataset(tmp_path)
    brain = make_brain(tmp_path)
    sampler = CrossCorpusBatchSampler.from_dataset(dataset, **SAMPLER)
    brain.fit(
        brain.hparams.epoch_counter,
        dataset,
        train_loader_kwargs={"batch_sampler": sampler, "num_workers": 0},
    )
    assert sorted(brain.batches) == [1, 2]
    assert brain.batches[1] != brain.batches[2]
    for epoch in (1, 2):
        assert brain.batches[epoch] == sampler_batches(dataset, epoch)


def test_length_bucket_batches_change_every_epoch_in_a_brain(tmp_path):
    """The stage-2 / FT training sampler (train_batching: length) too."""
    dataset = write_dataset(tmp_path)
    brain = make_brain(tmp_path)
    lengths = [float((7 * index) % 16) + 1.0 for index in range(16)]
    sampler = LengthBucketBatchSampler(lengths, 4, bucket_batches=2, seed=7)
    brain.fit(
        brain.hparams.epoch_counter,
        dataset,
        train_loader_kwargs={"batch_sampler": sampler, "num_workers": 0},
    )
    assert brain.batches[1] != brain.batches[2]
    for epoch in (1, 2):
        expected = LengthBucketBatchSampler(lengths, 4, 2, seed=7)
        expected.set_epoch(epoch)
        ids = [[dataset.data_ids[i] for i in batch] for batch in expected]
        assert brain.batches[epoch] == ids
