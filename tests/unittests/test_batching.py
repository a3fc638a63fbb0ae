"""Tests for speechbrain_sercl.data.batching (length-aware batches).

Batches are checked by brute force: counting every item, recomputing the
padding in float64 from its definition, and comparing the sorted batches
with an exhaustive search for the least padding.
"""

import itertools
from collections import Counter

import numpy as np
import pytest
from speechbrain.dataio.sampler import DistributedSamplerWrapper

from speechbrain_sercl.data.batching import (
    LengthBucketBatchSampler,
    length_sorted_batches,
    loader_kwargs,
    padding_fraction,
)

LENGTHS = np.random.default_rng(0).lognormal(1.2, 0.75, 203).tolist()


def brute_force_padding(lengths, batches):
    """Padded samples over all samples, one sample at a time."""
    padded = total = 0
    for batch in batches:
        longest = max(int(round(lengths[i] * 100)) for i in batch)
        for index in batch:
            samples = int(round(lengths[index] * 100))
            total += longest
            padded += longest - samples
    return padded / total


def assert_each_item_once(batches, count):
    seen = Counter(index for batch in batches for index in batch)
    assert sorted(seen) == list(range(count))
    assert set(seen.values()) == {1}


def epoch_batches(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_padding_fraction_matches_a_sample_count():
    lengths = [round(x, 2) for x in LENGTHS]
    batches = [list(range(s, min(s + 7, 203))) for s in range(0, 203, 7)]
    assert padding_fraction(lengths, batches) == pytest.approx(
        brute_force_padding(lengths, batches), abs=1e-12
    )
    assert padding_fraction([2.0, 2.0], [[0, 1]]) == 0.0


def test_sorted_batches_have_the_least_padding_of_any_split():
    lengths = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6]
    best = min(
        padding_fraction(lengths, [list(p[:2]), list(p[2:4]), list(p[4:])])
        for p in itertools.permutations(range(6))
    )
    batches = length_sorted_batches(lengths, 2)
    assert_each_item_once(batches, 6)
    assert padding_fraction(lengths, batches) == pytest.approx(best)
    assert batches == [[4, 2], [0, 5], [3, 1]]


@pytest.mark.parametrize("bucket_batches", [1, 3, 100])
def test_every_item_once_per_epoch(bucket_batches):
    sampler = LengthBucketBatchSampler(LENGTHS, 8, bucket_batches, seed=5)
    for epoch in range(3):
        batches = epoch_batches(sampler, epoch)
        assert len(batches) == len(sampler)
        assert_each_item_once(batches, len(LENGTHS))
        assert sum(len(b) < 8 for b in batches) <= 1


def test_batches_are_sorted_within_buckets_and_pad_less():
    sampler = LengthBucketBatchSampler(LENGTHS, 8, bucket_batches=5, seed=1)
    for batch in sampler:
        sizes = [LENGTHS[i] for i in batch]
        assert sizes == sorted(sizes, reverse=True)
    random = LengthBucketBatchSampler(LENGTHS, 8, bucket_batches=1, seed=1)
    assert padding_fraction(LENGTHS, list(sampler)) < 0.5 * padding_fraction(
        LENGTHS, list(random)
    )


def test_deterministic_under_the_seed_and_new_each_epoch():
    first = LengthBucketBatchSampler(LENGTHS, 8, 4, seed=3)
    again = LengthBucketBatchSampler(LENGTHS, 8, 4, seed=3)
    other = LengthBucketBatchSampler(LENGTHS, 8, 4, seed=4)
    assert epoch_batches(first, 2) == epoch_batches(again, 2)
    assert epoch_batches(first, 2) != epoch_batches(other, 2)
    epochs = [epoch_batches(first, e) for e in range(4)]
    assert all(a != b for a, b in itertools.combinations(epochs, 2))
    # Replaying an epoch (a mid-epoch resume) gives its batches again.
    assert epoch_batches(first, 1) == epochs[1]


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_ranks_share_the_epochs_batches(world_size):
    sampler = LengthBucketBatchSampler(LENGTHS, 8, 4, seed=2)
    expected = epoch_batches(sampler, 1)
    shares = []
    for rank in range(world_size):
        # As SpeechBrain's Brain wraps a batch_sampler under DDP (shuffled:
        # every rank permutes the batches alike, seed 0 + epoch).
        wrapper = DistributedSamplerWrapper(
            LengthBucketBatchSampler(LENGTHS, 8, 4, seed=2),
            num_replicas=world_size,
            rank=rank,
            shuffle=True,
        )
        wrapper.set_epoch(1)
        shares.append(list(wrapper))
    assert [len(s) for s in shares] == [-(-len(expected) // world_size)] * (
        world_size
    )
    # Whole batches, each rank its own, together every batch of the epoch
    # (DistributedSampler repeats the first ones to even the shares out).
    together = [tuple(b) for share in shares for b in share]
    assert set(together) == {tuple(b) for b in expected}
    surplus = len(together) - len(expected)
    assert surplus == (-len(expected)) % world_size
    assert sum(Counter(together).values()) - len(set(together)) == surplus


def test_loader_kwargs_select_the_batching():
    test = loader_kwargs("length", LENGTHS, 8, False, 0, 4)
    assert test["batch_sampler"] == length_sorted_batches(LENGTHS, 8)
    train = loader_kwargs("length", LENGTHS, 8, True, 7, 4)["batch_sampler"]
    assert (train.seed, train.bucket_batches) == (7, 4)
    assert loader_kwargs("plain", LENGTHS, 8, True, 0, 4)["shuffle"] is True
    with pytest.raises(ValueError, match="'sorted'"):
        loader_kwargs("sorted", LENGTHS, 8, True, 0, 4)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        LengthBucketBatchSampler(LENGTHS, 0)
    with pytest.raises(ValueError, match="bucket_batches"):
        LengthBucketBatchSampler(LENGTHS, 8, bucket_batches=0)
    with pytest.raises(ValueError, match="no items"):
        LengthBucketBatchSampler([], 8)
