#!/usr/bin/env python3
"""Stage 1: cross-corpus supervised contrastive fine-tuning.

Fine-tunes the transformer of a self-supervised speech model (WavLM or
HuBERT; CNN feature encoder and feature projection frozen) together with a
self-attention pooling layer. Every batch comes from the training parts of
all corpora of this run at once: one emotion e, half of the batch with e
(spread over the corpora that have it), half without (spread over all
corpora). The loss is supervised InfoNCE plus a cosine margin loss. The
encoder is written to ``encoder_folder`` for stage 2
(``train_classifier.py``).

To run (from the repository root):
    python recipes/CrossCorpus/train_contrastive.py hparams/wavlm.yaml \\
        --data_folder_iemocap=/data/IEMOCAP_full_release \\
        --data_folder_casia=/data/CASIA --run=0

Multi-GPU: ``torchrun --standalone --nproc_per_node=4 <same command>``;
mixed precision: ``--precision=bf16``. The embedded demo:
``python recipes/CrossCorpus/train_contrastive.py hparams/demo.yaml``.

Authors
 * speechbrain-sercl developers
"""

import sys

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_sercl.config import current_overrides
from speechbrain_sercl.data.corpora import prepare_run
from speechbrain_sercl.data.pipeline import make_dataset
from speechbrain_sercl.method.brains import ContrastiveBrain
from speechbrain_sercl.method.sampler import CrossCorpusBatchSampler
from speechbrain_sercl.protocol.locking import hold_step_folder


def dataio_prep(hparams, split):
    """The training utterances of this run, all corpora together.

    Stage 1 of run i sees only the training parts of run i: the test fold
    of every corpus is left out; the final run (``--run=final``) sees every
    utterance (the split is written to the output folder).
    """
    train_data = make_dataset(
        split.manifest, split.train(), crop=hparams["train_crop"]
    )
    sampler = CrossCorpusBatchSampler.from_dataset(
        train_data,
        batch_size=hparams["batch_size"],
        num_batches=hparams["batches_per_epoch"],
        seed=hparams["seed"],
        emotion_policy=hparams["emotion_policy"],
    )
    return train_data, sampler


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    overrides = current_overrides(hparams_file, overrides)  # 0.1's --fold
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    hold_step_folder(hparams["output_folder"])  # one run of a step at a time

    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )

    split = prepare_run(hparams)
    train_data, sampler = dataio_prep(hparams, split)

    contrastive_brain = ContrastiveBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    contrastive_brain.fit(
        contrastive_brain.hparams.epoch_counter,
        train_data,
        train_loader_kwargs={
            "batch_sampler": sampler,
            "num_workers": hparams["num_workers"],
            "generator": torch.Generator().manual_seed(hparams["seed"]),
        },
    )
    contrastive_brain.save_encoder(hparams["encoder_folder"])
