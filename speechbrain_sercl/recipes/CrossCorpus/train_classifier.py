#!/usr/bin/env python3
"""Stage 2 and the FT baseline: an emotion classifier for one corpus.

With ``hparams/classifier.yaml`` (``ClassifierBrain``) the speech model
of stage 1 is loaded from ``stage1_folder`` by the YAML's ``pretrainer``,
frozen and kept in eval mode, and only the attention pooling and the
classifier (768 -> 256 -> ReLU -> classes) are trained, by default on
the speech model's features computed once per utterance and cached
(``use_feature_cache``). With
``hparams/finetune.yaml`` (``FineTuneBrain``) the transformer is fine-tuned
too, from the pre-trained model: the paper's "FT" baseline. Both train on
the training part of the run's fold for one corpus and write their test
report (UA, WA, macro-F1, confusion matrix) and per-utterance predictions
for its test part. With ``--run=final`` (the final run, for publishing)
they train on every utterance of the corpus, test nothing and write
``trained.json`` instead.

To run (from the repository root):
    python recipes/CrossCorpus/train_classifier.py hparams/classifier.yaml \\
        --corpus=iemocap --data_folder=/data/IEMOCAP_full_release --run=0
    python recipes/CrossCorpus/train_classifier.py hparams/finetune.yaml \\
        --corpus=casia --data_folder=/data/CASIA --run=0

Authors
 * speechbrain-sercl developers
"""

import os
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_sercl.config import current_overrides
from speechbrain_sercl.data.batching import effective_lengths, loader_kwargs
from speechbrain_sercl.data.corpora import prepare_run
from speechbrain_sercl.data.pipeline import make_dataset, make_label_encoder
from speechbrain_sercl.layout import LABEL_ENCODER_FILE
from speechbrain_sercl.protocol.locking import hold_step_folder


def label_encoder_prep(hparams, split):
    """The emotion encoder of the corpus's training part (saved once)."""
    corpus = hparams["corpus"]
    emotions = [split.manifest[utt]["emotion"] for utt in split.train(corpus)]
    label_encoder = make_label_encoder(
        emotions, os.path.join(hparams["save_folder"], LABEL_ENCODER_FILE)
    )
    if len(label_encoder) != hparams["n_classes"]:
        raise ValueError(
            f"{corpus}: the training data has {len(label_encoder)} emotions "
            f"({list(label_encoder.lab2ind)}) but n_classes is "
            f"{hparams['n_classes']}"
        )
    return label_encoder


def dataio_prep(hparams, split, brain):
    """Training and test sets of this run's fold.

    Stage 2 with ``use_feature_cache`` reads the speech model's cached
    features (built here when missing) instead of the audio. The final
    run has no test part: its test set is None.
    """
    corpus, manifest = hparams["corpus"], split.manifest
    train_data = make_dataset(
        manifest,
        split.train(corpus),
        crop=hparams["train_crop"],
        label_encoder=hparams["label_encoder"],
        features=brain.cached_features(manifest, split.train(corpus)),
    )
    test_data = None
    if split.test(corpus):
        max_seconds = hparams["test_max_seconds"]
        test_data = make_dataset(
            manifest,
            split.test(corpus),
            max_seconds=max_seconds,
            label_encoder=hparams["label_encoder"],
            features=brain.cached_features(
                manifest, split.test(corpus), max_seconds
            ),
        )
    return train_data, test_data


def batching(hparams, split, ids, train):
    """The loader options of the training or test set (YAML's batching).

    Lengths come from the manifest's durations, after the training crop
    or the test truncation.
    """
    limit = hparams["crop_seconds"] if train else hparams["test_max_seconds"]
    durations = [split.manifest[utt]["duration"] for utt in ids]
    return loader_kwargs(
        hparams["train_batching" if train else "test_batching"],
        effective_lengths(durations, limit),
        hparams["batch_size"],
        train=train,
        seed=hparams["seed"],
        bucket_batches=hparams["bucket_batches"],
    )


def load_stage1(hparams):
    """Stage 2 starts from the stage-1 speech model and pooling.

    Runs the YAML's ``pretrainer`` (which refuses files whose keys do not
    match the modules); a YAML without one (FT) starts from the
    pre-trained speech model.
    """
    if "pretrainer" in hparams:
        run_on_main(hparams["pretrainer"].collect_files)
        hparams["pretrainer"].load_collected()


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
    hparams["label_encoder"] = label_encoder_prep(hparams, split)
    load_stage1(hparams)

    emotion_brain = hparams["brain_class"](
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    train_data, test_data = dataio_prep(hparams, split, emotion_brain)
    corpus = hparams["corpus"]
    emotion_brain.fit(
        emotion_brain.hparams.epoch_counter,
        train_data,
        train_loader_kwargs={
            **batching(hparams, split, split.train(corpus), train=True),
            "num_workers": hparams["num_workers"],
        },
    )
    if test_data is not None:
        emotion_brain.evaluate(
            test_data,
            test_loader_kwargs={
                **batching(hparams, split, split.test(corpus), train=False),
                "num_workers": hparams["num_workers"],
            },
        )
    else:  # the final run: every utterance was trained on
        emotion_brain.write_trained_report(split.train(hparams["corpus"]))
