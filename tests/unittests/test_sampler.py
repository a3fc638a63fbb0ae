"""Tests for speechbrain_sercl.method.sampler (the cross-corpus batch sampler).

Every batch is checked by brute-force counting of its items' corpus and
emotion labels; quotas are compared with numbers written out by hand or
with an exhaustive search.
"""

import itertools
from collections import Counter

import pytest
import torch
from scipy.stats import chisquare
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataloader import SaveableDataLoader
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.sampler import DistributedSamplerWrapper
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_sercl.method.sampler import (
    CrossCorpusBatchSampler,
    spread_quota,
)

EMOTIONS = ("angry", "happy", "neutral", "sad")


def make_labels(spec):
    """Item labels from {corpus: {emotion: count}}, corpora interleaved."""
    items = [
        (corpus, emotion)
        for corpus, counts in spec.items()
        for emotion, count in counts.items()
        for _ in range(count)
    ]
    # A fixed shuffle, so that indices of one corpus are not contiguous.
    order = torch.randperm(
        len(items), generator=torch.Generator().manual_seed(0)
    )
    items = [items[i] for i in order.tolist()]
    return [c for c, _ in items], [e for _, e in items]


def composition(batch, corpora, emotions):
    """Per-corpus counts of positives and negatives, by brute force."""
    emotion = emotions[batch[0]]
    is_positive = [emotions[i] == emotion for i in batch]
    num_positives = sum(is_positive)
    positives = Counter(corpora[i] for i in batch[:num_positives])
    negatives = Counter(corpora[i] for i in batch[num_positives:])
    return emotion, is_positive, positives, negatives


def assert_positives_first(batch, emotions, num_positives):
    emotion = emotions[batch[0]]
    flags = [emotions[i] == emotion for i in batch]
    expected = [True] * num_positives + [False] * (len(batch) - num_positives)
    assert flags == expected


def brute_force_spread(total, capacities):
    """Min sum of squares (lexicographically largest on ties), exhaustively.

    When the capacities cannot cover ``total``, every corpus with items
    gives them all and the extra counts (above capacity) are the ones that
    must be as even as possible.
    """
    names = list(capacities)
    caps = [capacities[n] for n in names]
    covered = total <= sum(caps)
    best = None

    def candidates(cap):
        if covered:
            return range(cap + 1)
        return range(cap, total + 1) if cap > 0 else range(1)

    for counts in itertools.product(*map(candidates, caps)):
        if sum(counts) != total:
            continue
        extra = [
            c - (0 if covered else cap)
            for c, cap in zip(counts, caps, strict=True)
        ]
        key = (sum(x * x for x in extra), tuple(-x for x in extra))
        if best is None or key < best[0]:
            best = (key, counts)
    return dict(zip(names, best[1], strict=True))


def test_spread_quota_matches_exhaustive_search():
    for caps in itertools.product(range(5), repeat=3):
        if sum(caps) == 0:
            continue
        capacities = dict(zip("cab", caps, strict=True))
        for total in range(13):
            assert spread_quota(total, capacities) == brute_force_spread(
                total, capacities
            ), (total, capacities)


def test_spread_quota_paper_cases():
    assert spread_quota(16, {"iemocap": 5531, "casia": 1200}) == {
        "iemocap": 8,
        "casia": 8,
    }
    assert spread_quota(16, {"casia": 1200}) == {"casia": 16}
    assert spread_quota(15, {"b": 50, "a": 50}) == {"b": 8, "a": 7}
    with pytest.raises(ValueError, match="total must be >= 0"):
        spread_quota(-1, {"a": 3})


def two_corpora(extra=None):
    spec = {
        "casia": dict.fromkeys(EMOTIONS, 25),
        "iemocap": dict.fromkeys(EMOTIONS, 25),
    }
    for corpus, counts in (extra or {}).items():
        spec[corpus].update(counts)
    return make_labels(spec)


def test_paper_rule_two_corpora_batch_32():
    corpora, emotions = two_corpora(extra={"casia": {"fear": 30}})
    sampler = CrossCorpusBatchSampler(
        corpora, emotions, batch_size=32, num_batches=60
    )
    seen = set()
    for batch in sampler:
        emotion, _, positives, negatives = composition(batch, corpora, emotions)
        seen.add(emotion)
        assert len(batch) == 32 and len(set(batch)) == 32
        assert_positives_first(batch, emotions, 16)
        if emotion == "fear":  # only casia has fear: N/2 from casia
            assert positives == {"casia": 16}
        else:
            assert positives == {"casia": 8, "iemocap": 8}
        assert negatives == {"casia": 8, "iemocap": 8}
        # Positives are grouped by corpus, in sorted corpus order.
        first_corpora = [corpora[i] for i in batch[:16]]
        assert first_corpora == sorted(first_corpora)
    assert seen == {"fear", *EMOTIONS}


def test_rounding_batch_30():
    corpora, emotions = two_corpora()
    sampler = CrossCorpusBatchSampler(
        corpora, emotions, batch_size=30, num_batches=40
    )
    extra_positive = Counter()
    for batch in sampler:
        _, _, positives, negatives = composition(batch, corpora, emotions)
        assert_positives_first(batch, emotions, 15)
        assert sorted(positives.values()) == [7, 8]
        assert sorted(negatives.values()) == [7, 8]
        # The extra negative goes to the other corpus: 15 items each.
        for corpus in ("casia", "iemocap"):
            assert positives[corpus] + negatives[corpus] == 15
        extra_positive[max(positives, key=positives.get)] += 1
    # The remainder order is random per batch: both corpora get it.
    assert extra_positive["casia"] > 5 and extra_positive["iemocap"] > 5


def test_rounding_batch_33():
    corpora, emotions = two_corpora()
    sampler = CrossCorpusBatchSampler(
        corpora, emotions, batch_size=33, num_batches=40
    )
    extra_negative = Counter()
    for batch in sampler:
        _, _, positives, negatives = composition(batch, corpora, emotions)
        assert len(batch) == 33
        assert_positives_first(batch, emotions, 16)
        assert positives == {"casia": 8, "iemocap": 8}
        assert sorted(negatives.values()) == [8, 9]
        extra_negative[max(negatives, key=negatives.get)] += 1
    assert extra_negative["casia"] > 5 and extra_negative["iemocap"] > 5


def test_three_corpora():
    spec = {
        "a": dict.fromkeys(EMOTIONS, 20),
        "b": dict.fromkeys(EMOTIONS, 20),
        "c": {"neutral": 20, "sad": 20, "angry": 20},
    }
    corpora, emotions = make_labels(spec)
    sampler = CrossCorpusBatchSampler(
        corpora, emotions, batch_size=32, num_batches=80
    )
    extra = Counter()
    for batch in sampler:
        emotion, _, positives, negatives = composition(batch, corpora, emotions)
        assert len(set(batch)) == 32
        assert_positives_first(batch, emotions, 16)
        assert sorted(negatives.values()) == [5, 5, 6]
        if emotion == "happy":  # c has no happy
            assert positives == {"a": 8, "b": 8}
            continue
        assert sorted(positives.values()) == [5, 5, 6]
        # Negatives use the reversed order: a different corpus gets 6.
        top_positive = max(positives, key=positives.get)
        top_negative = max(negatives, key=negatives.get)
        assert top_positive != top_negative
        extra[top_positive] += 1
    assert set(extra) == {"a", "b", "c"}


def test_small_corpus_gives_all_and_rest_moves():
    spec = {
        "a": {"sad": 3, "neutral": 30},
        "b": {"sad": 30, "neutral": 30},
    }
    corpora, emotions = make_labels(spec)
    sampler = CrossCorpusBatchSampler(
        corpora, emotions, batch_size=32, num_batches=30
    )
    sad_in_a = {
        i
        for i, (c, e) in enumerate(zip(corpora, emotions, strict=True))
        if (c, e) == ("a", "sad")
    }
    for batch in sampler:
        emotion, _, positives, negatives = composition(batch, corpora, emotions)
        assert len(set(batch)) == 32  # no item twice
        if emotion == "sad":
            assert positives == {"a": 3, "b": 13}
            assert set(batch[:3]) == sad_in_a
            assert negatives == {"a": 8, "b": 8}


def test_replacement_only_when_whole_pool_too_small():
    corpora, emotions = make_labels({"solo": {"happy": 5, "neutral": 40}})
    sampler = CrossCorpusBatchSampler(
        corpora, emotions, batch_size=32, num_batches=20
    )
    happy = {i for i, e in enumerate(emotions) if e == "happy"}
    num_happy_batches = 0
    for batch in sampler:
        assert_positives_first(batch, emotions, 16)
        if emotions[batch[0]] == "happy":
            num_happy_batches += 1
            assert set(batch[:16]) == happy  # every one, then repeats
            assert len(set(batch[16:])) == 16
        else:  # the 5 happy items are then the only negatives
            assert len(set(batch[:16])) == 16
            assert set(batch[16:]) == happy
    assert num_happy_batches > 0


def test_single_corpus_gives_half_and_half():
    corpora, emotions = make_labels({"solo": dict.fromkeys(EMOTIONS, 12)})
    sampler = CrossCorpusBatchSampler(corpora, emotions, batch_size=8)
    assert len(sampler) == 48 // 8
    for batch in sampler:
        emotion, flags, positives, negatives = composition(
            batch, corpora, emotions
        )
        assert flags == [True] * 4 + [False] * 4
        assert positives == {"solo": 4} and negatives == {"solo": 4}


def test_single_emotion_corpus_gives_no_negatives_for_it():
    spec = {"a": {"neutral": 20}, "b": {"neutral": 20, "sad": 20}}
    corpora, emotions = make_labels(spec)
    sampler = CrossCorpusBatchSampler(
        corpora, emotions, batch_size=16, num_batches=20
    )
    for batch in sampler:
        emotion, _, positives, negatives = composition(batch, corpora, emotions)
        if emotion == "neutral":
            assert positives == {"a": 4, "b": 4}
            assert negatives == {"b": 8}
        else:
            assert positives == {"b": 8}
            assert negatives == {"a": 4, "b": 4}


def test_default_length():
    corpora, emotions = two_corpora()
    assert len(CrossCorpusBatchSampler(corpora, emotions)) == 200 // 32
    assert len(CrossCorpusBatchSampler(corpora[:10], emotions[:10])) == 1
    assert len(CrossCorpusBatchSampler(corpora, emotions, num_batches=7)) == 7


def test_same_seed_and_epoch_give_same_batches():
    corpora, emotions = two_corpora()

    def batches(seed=1234, epoch=0):
        return list(
            CrossCorpusBatchSampler(
                corpora, emotions, batch_size=8, seed=seed, epoch=epoch
            )
        )

    assert batches() == batches()
    assert batches(epoch=3) == batches(epoch=3)
    assert batches(epoch=3) != batches(epoch=4)
    assert batches(seed=1) != batches(seed=2)
    sampler = CrossCorpusBatchSampler(corpora, emotions, batch_size=8)
    sampler.set_epoch(3)
    assert list(sampler) == batches(epoch=3)
    assert list(sampler) == batches(epoch=3)  # iterating again: same


def test_ddp_ranks_get_disjoint_whole_batches():
    corpora, emotions = two_corpora()
    for epoch in (1, 2):
        reference = CrossCorpusBatchSampler(
            corpora, emotions, batch_size=8, num_batches=10, epoch=epoch
        )
        epoch_batches = list(reference)
        per_rank = []
        for rank in (0, 1):
            # A fresh sampler per rank, as in separate processes.
            wrapper = DistributedSamplerWrapper(
                CrossCorpusBatchSampler(
                    corpora, emotions, batch_size=8, num_batches=10
                ),
                num_replicas=2,
                rank=rank,
                shuffle=True,
            )
            wrapper.set_epoch(epoch)  # what Brain._fit_train does
            assert len(wrapper) == 5
            per_rank.append([list(batch) for batch in wrapper])
        assert all(len(batches) == 5 for batches in per_rank)
        union = Counter(tuple(b) for b in per_rank[0] + per_rank[1])
        assert union == Counter(tuple(b) for b in epoch_batches)


def test_emotion_frequencies_follow_policy():
    spec = {
        "a": {"neutral": 60, "sad": 20, "angry": 10},
        "b": {"neutral": 30, "sad": 10, "happy": 6, "fear": 1},
    }
    corpora, emotions = make_labels(spec)
    eligible = ["angry", "happy", "neutral", "sad"]  # fear has 1 item
    totals = Counter(emotions)
    num_batches = 2000
    observed = {}
    for policy in ("uniform", "frequency"):
        sampler = CrossCorpusBatchSampler(
            corpora,
            emotions,
            batch_size=8,
            num_batches=num_batches,
            seed=7,
            emotion_policy=policy,
        )
        picked = Counter(emotions[batch[0]] for batch in sampler)
        assert set(picked) <= set(eligible)
        observed[policy] = [picked[e] for e in eligible]
    uniform = [num_batches / 4] * 4
    weights = [totals[e] for e in eligible]
    by_frequency = [num_batches * w / sum(weights) for w in weights]
    assert chisquare(observed["uniform"], uniform).pvalue > 1e-3
    assert chisquare(observed["frequency"], by_frequency).pvalue > 1e-3
    # The test has power: each policy is rejected under the other's law.
    assert chisquare(observed["uniform"], by_frequency).pvalue < 1e-6
    assert chisquare(observed["frequency"], uniform).pvalue < 1e-6


def make_dataset(corpora, emotions, loads):
    data = {
        f"utt{i:03d}": {"corpus": c, "emotion": e, "path": f"{i}.wav"}
        for i, (c, e) in enumerate(zip(corpora, emotions, strict=True))
    }

    def read(path):
        loads.append(path)
        return torch.ones(int(path.split(".")[0]) % 5 + 1)

    return DynamicItemDataset(
        data,
        dynamic_items=[{"func": read, "takes": "path", "provides": "sig"}],
        output_keys=["id", "corpus", "emotion", "sig"],
    )


def test_from_dataset_with_saveable_dataloader():
    corpora, emotions = two_corpora()
    loads = []
    dataset = make_dataset(corpora, emotions, loads)
    sampler = CrossCorpusBatchSampler.from_dataset(
        dataset, batch_size=8, num_batches=4
    )
    assert loads == []  # no audio read while building the sampler
    assert dataset.pipeline.output_mapping == {
        k: k for k in ["id", "corpus", "emotion", "sig"]
    }
    loader = SaveableDataLoader(
        dataset, batch_sampler=sampler, collate_fn=PaddedBatch
    )
    expected = list(sampler)
    batches = list(loader)
    assert len(batches) == len(expected) == 4
    for batch, indices in zip(batches, expected, strict=True):
        assert batch.id == [f"utt{i:03d}" for i in indices]
        assert batch.emotion == [emotions[i] for i in indices]
        assert batch.corpus == [corpora[i] for i in indices]
        assert batch.sig.data.shape[0] == 8
    assert len(loads) == 32


def test_dataloader_checkpoint_resumes_mid_epoch(tmp_path):
    corpora, emotions = two_corpora()

    def loader():
        dataset = make_dataset(corpora, emotions, [])
        sampler = CrossCorpusBatchSampler.from_dataset(
            dataset, batch_size=8, num_batches=5, epoch=2
        )
        return SaveableDataLoader(
            dataset, batch_sampler=sampler, collate_fn=PaddedBatch
        )

    first = loader()
    checkpointer = Checkpointer(tmp_path, {"loader": first})
    ids = []
    for step, batch in enumerate(first):
        ids.append(batch.id)
        if step == 1:
            checkpointer.save_checkpoint(end_of_epoch=False)
    second = loader()
    Checkpointer(tmp_path, {"loader": second}).recover_if_possible()
    assert [batch.id for batch in second] == ids[2:]


def test_describe_lists_corpora_emotions_and_quotas():
    spec = {"a": {"sad": 6, "angry": 4}, "b": {"sad": 2, "fear": 1}}
    corpora, emotions = make_labels(spec)
    sampler = CrossCorpusBatchSampler(corpora, emotions, batch_size=6)
    text = sampler.describe()
    assert "corpus a: 10 items (angry=4, sad=6)" in text
    assert "corpus b: 3 items (fear=1, sad=2)" in text
    assert "emotion fear: 1 items, not eligible" in text
    # sad: 3 positives over a, b (a first in the default order); 3
    # negatives: a has 4 angry, b has 1 fear -> b gives 1, a gives 2.
    assert "emotion sad: 8 items, positives a=2 b=1, negatives a=2 b=1" in (
        text
    )
    assert repr(sampler).startswith("CrossCorpusBatchSampler(corpora=2,")


@pytest.mark.parametrize(
    ("corpora", "emotions", "kwargs", "message"),
    [
        (["a", "a"], ["x"], {}, "one entry per item"),
        ([], [], {}, "no items"),
        (["a"] * 4, ["x", "y"] * 2, {"batch_size": 3}, "batch_size"),
        (["a"] * 4, ["x", "y"] * 2, {"batch_size": 8.0}, "batch_size"),
        (["a"] * 4, ["x", "y"] * 2, {"num_batches": 0}, "num_batches"),
        (["a"] * 4, ["x", "y"] * 2, {"emotion_policy": "x"}, "emotion_polic"),
        (["a", "b"], ["x", "x"], {}, "no corpus has negatives"),
        (["a", "b"], ["x", "y"], {}, "no eligible emotion"),
    ],
)
def test_clear_errors(corpora, emotions, kwargs, message):
    with pytest.raises(ValueError, match=message):
        CrossCorpusBatchSampler(corpora, emotions, **kwargs)


def test_clear_errors_of_helpers():
    sampler = CrossCorpusBatchSampler(
        ["a", "a", "b", "b", "b"], ["x", "x", "x", "y", "z"], batch_size=4
    )
    with pytest.raises(ValueError, match="'y' is not eligible"):
        sampler.batch_quotas("y")
    with pytest.raises(ValueError, match="not a permutation"):
        sampler.batch_quotas("x", order=["a"])
    dataset = make_dataset(["a", "b"], ["x", "y"], [])
    with pytest.raises(KeyError, match="no key \\['speaker'\\]"):
        CrossCorpusBatchSampler.from_dataset(dataset, corpus_key="speaker")
