#!/usr/bin/env python3
"""Padded share of the batches of every stage, plain vs length-aware.

Lengths only (no audio, no model): IEMOCAP- and CASIA-like corpora
(``_lengths.py``: log-normal fits, their parameters and sources). For
each batching of the protocol the script forms the batches with the
package's own samplers and prints the fraction of padded samples
(:func:`speechbrain_sercl.data.batching.padding_fraction`):

* stage 1: the cross-corpus sampler (both corpora, emotion-driven
  batches) on random crops of ``--crop`` seconds;
* stage 2 / FT training, per corpus: shuffled batches of crops of
  ``--crop`` seconds (``train_batching: plain``) vs
  ``LengthBucketBatchSampler`` (``train_batching: length``);
* test, per corpus: whole utterances in the data's order vs sorted by
  length (``test_batching``);
* ``sercl predict``: files in the order given vs its length-sorted
  batches (files up to 30 s; longer ones go in windows of equal length).

Each line ends with the length-aware / plain ratio; the goal is < 10 %.

    python benchmarks/padding.py
"""

import argparse

import numpy as np
from _lengths import corpus_emotions, corpus_lengths

from speechbrain_sercl.data.batching import (
    LengthBucketBatchSampler,
    effective_lengths,
    length_sorted_batches,
    padding_fraction,
)
from speechbrain_sercl.method.sampler import CrossCorpusBatchSampler

PREDICT_MAX_SECONDS = 30.0  # sercl predict's default
PREDICT_BATCH_SIZE = 8  # sercl predict's default


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--crop", type=float, default=6.0)
    parser.add_argument("--bucket-batches", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def in_order(count, batch_size):
    """Batches of consecutive items (a loader without shuffling)."""
    return [
        list(range(start, min(start + batch_size, count)))
        for start in range(0, count, batch_size)
    ]


def shuffled(count, batch_size, seed):
    """Batches of a random permutation (a loader with shuffle=True)."""
    order = np.random.default_rng(seed).permutation(count).tolist()
    return [
        order[start : start + batch_size]
        for start in range(0, count, batch_size)
    ]


def epochs_padding(lengths, make_batches, epochs):
    """Mean padding fraction over several epochs of batches."""
    return np.mean(
        [padding_fraction(lengths, make_batches(e)) for e in range(epochs)]
    )


def stage1_row(arguments, corpora):
    corpus_of, emotions, lengths = [], [], []
    for name, seconds in corpora.items():
        corpus_of += [name] * len(seconds)
        emotions += corpus_emotions(name, len(seconds), arguments.seed)
        lengths += effective_lengths(seconds, arguments.crop)
    sampler = CrossCorpusBatchSampler(
        corpus_of, emotions, arguments.batch_size, seed=arguments.seed
    )

    def batches(epoch):
        sampler.set_epoch(epoch)
        return list(sampler)

    return epochs_padding(lengths, batches, arguments.epochs)


def training_rows(arguments, name, seconds):
    lengths = effective_lengths(seconds, arguments.crop)
    plain = epochs_padding(
        lengths,
        lambda e: shuffled(len(lengths), arguments.batch_size, e),
        arguments.epochs,
    )
    sampler = LengthBucketBatchSampler(
        lengths, arguments.batch_size, arguments.bucket_batches
    )

    def bucketed(epoch):
        sampler.set_epoch(epoch)
        return list(sampler)

    aware = epochs_padding(lengths, bucketed, arguments.epochs)
    return plain, aware


def test_rows(arguments, seconds):
    lengths = effective_lengths(seconds)
    plain = padding_fraction(
        lengths, in_order(len(lengths), arguments.batch_size)
    )
    aware = padding_fraction(
        lengths, length_sorted_batches(lengths, arguments.batch_size)
    )
    return plain, aware


def predict_rows(seconds):
    lengths = [s for s in seconds if s <= PREDICT_MAX_SECONDS]
    plain = padding_fraction(
        lengths, in_order(len(lengths), PREDICT_BATCH_SIZE)
    )
    aware = padding_fraction(
        lengths, length_sorted_batches(lengths, PREDICT_BATCH_SIZE)
    )
    return plain, aware


def main():
    arguments = parse_arguments()
    corpora = {
        name: corpus_lengths(name, arguments.seed)
        for name in ("iemocap", "casia")
    }
    print(
        f"padded share of batch samples; batch {arguments.batch_size}, "
        f"training crops of {arguments.crop} s, buckets of "
        f"{arguments.bucket_batches} batches, {arguments.epochs} epochs; "
        "lengths from log-normal fits (benchmarks/_lengths.py)"
    )
    for name, seconds in corpora.items():
        print(
            f"  {name}: {len(seconds)} utterances, mean {seconds.mean():.2f} "
            f"s, median {np.median(seconds):.2f} s, max {seconds.max():.1f} s"
        )
    print(f"{'batches':34s} {'plain':>7s} {'length':>7s} {'ratio':>6s}")
    stage1 = stage1_row(arguments, corpora)
    print(
        f"{'stage 1, both corpora':34s} {stage1:7.1%} {'n/a':>7s} {'n/a':>6s}"
    )
    rows = []
    for name, seconds in corpora.items():
        rows.append(
            (
                f"stage 2 / FT training, {name}",
                *training_rows(arguments, name, seconds),
            )
        )
        rows.append((f"test, {name}", *test_rows(arguments, seconds)))
        rows.append((f"sercl predict, {name}", *predict_rows(seconds)))
    for label, plain, aware in rows:
        print(f"{label:34s} {plain:7.1%} {aware:7.1%} {aware / plain:6.3f}")


if __name__ == "__main__":
    main()
