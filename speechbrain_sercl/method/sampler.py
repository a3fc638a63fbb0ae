"""The cross-corpus batch sampler of stage 1 (supervised contrastive).

Every batch is built around one emotion ``e``: ``batch_size // 2``
positives (utterances with ``e``) spread over the corpora that have ``e``,
then ``batch_size - batch_size // 2`` negatives (any other emotion) spread
over every corpus that has one. With two corpora and ``batch_size = 32``
this is the paper's rule: 8 + 8 positives (or 16 from the one corpus that
has ``e``) and 8 + 8 negatives.

Rounding and shortages, exactly (see `spread_quota`):

- a quota is split as evenly as possible: each corpus gets
  ``quota // k``, and the ``quota % k`` left over go one each to the first
  corpora of a priority order;
- the priority order is a seeded random permutation of the corpora, drawn
  once per batch; positives use it as drawn, negatives use it reversed, so
  with two corpora and an odd quota the corpus that gets the extra
  positive does not also get the extra negative;
- a corpus with fewer items than its share gives all of them and the rest
  of its share is spread, by the same rule, over the corpora that still
  have items;
- only when all the corpora together have fewer items than the quota is
  every item taken once and the shortfall spread evenly over the corpora
  (same rule, no cap) and drawn with replacement.

Within a batch a corpus's items are drawn without replacement (except in
that last case); batches are drawn independently of each other, so an
epoch may repeat an item in several batches and miss others.
"""

import torch
from speechbrain.utils.logger import get_logger

__all__ = ["CrossCorpusBatchSampler", "spread_quota"]

logger = get_logger(__name__)

EMOTION_POLICIES = ("uniform", "frequency")
MIN_BATCH_SIZE = 4


def spread_quota(total, capacities):
    """Split ``total`` items over corpora as evenly as their sizes allow.

    Water-filling: every corpus gets ``total // k`` (``k`` corpora that
    still have items) and the remainder goes one each to the first corpora
    in the order of ``capacities``; a corpus with fewer items than its share
    gives all of them and the rest is split again over the others. If the
    capacities together are smaller than ``total``, every corpus gives all
    its items and the shortfall is split evenly (same order for the
    remainder) over the corpora that have items: those counts exceed the
    capacity and must be drawn with replacement.

    Arguments
    ---------
    total : int
        The number of items to spread (non-negative).
    capacities : dict
        Corpus name -> number of items available, in priority order for the
        remainder. Corpora with capacity 0 get 0.

    Returns
    -------
    dict
        Corpus name -> number of items to draw, same keys and order as
        ``capacities``; the values sum to ``total`` whenever some corpus
        has items.

    Example
    -------
    >>> spread_quota(16, {"iemocap": 900, "casia": 200})
    {'iemocap': 8, 'casia': 8}
    >>> spread_quota(15, {"casia": 200, "iemocap": 900})
    {'casia': 8, 'iemocap': 7}
    >>> spread_quota(16, {"a": 3, "b": 100, "c": 100})
    {'a': 3, 'b': 7, 'c': 6}
    >>> spread_quota(16, {"a": 3, "b": 2})
    {'a': 9, 'b': 7}
    """
    if total < 0:
        raise ValueError(f"spread_quota: total must be >= 0, got {total}")
    quotas = dict.fromkeys(capacities, 0)
    active = [name for name, size in capacities.items() if size > 0]
    remaining = total
    while active:
        base = remaining // len(active)
        saturated = [name for name in active if capacities[name] <= base]
        if not saturated:
            break
        for name in saturated:
            quotas[name] = capacities[name]
            remaining -= capacities[name]
        active = [name for name in active if name not in saturated]
    if not active:
        # Even the whole pool is too small: the rest is drawn again.
        active = [name for name, size in capacities.items() if size > 0]
    if active:
        base, extra = divmod(remaining, len(active))
        for rank, name in enumerate(active):
            quotas[name] += base + (1 if rank < extra else 0)
    return quotas


class CrossCorpusBatchSampler(torch.utils.data.Sampler):
    """Batch sampler for cross-corpus supervised contrastive learning.

    Each batch picks one emotion ``e`` among the eligible emotions (at least
    2 utterances with ``e`` overall and at least one utterance with another
    emotion), then yields ``batch_size // 2`` positives followed by
    ``batch_size - batch_size // 2`` negatives as one list of dataset
    indices (see the module docstring for the exact rounding). Positives
    come first, grouped by corpus in sorted corpus order: the Brain reads
    the batch's emotion from its first element, and with two corpora the
    two halves of the positives come from different corpora whenever
    both have ``e``.

    Emotion policies: ``"uniform"`` picks ``e`` uniformly among the
    eligible emotions; ``"frequency"`` picks ``e`` with probability
    proportional to its number of utterances (all corpora together).
    Emotions that are not eligible are never picked (a warning names them).

    A single corpus is allowed: positives and negatives then all come from
    it. A corpus with only one emotion is allowed too: it gives positives
    for that emotion and negatives for the others.

    The batches depend only on the labels, ``seed`` and ``epoch``: each
    ``__iter__`` seeds a private ``torch.Generator`` with ``seed + epoch``,
    so every process yields the same batches. The sampler never splits by
    rank: under DDP, SpeechBrain's ``Brain`` wraps it in
    ``DistributedSamplerWrapper`` which hands each rank a disjoint set of
    whole batches (padding with repeated batches when the number of
    batches is not a multiple of the world size). Give each rank at least
    two batches: ``DistributedSamplerWrapper`` mishandles a rank that gets
    exactly one. Outside DDP the ``Brain`` calls ``set_epoch`` only on its
    ``train_sampler``: set ``brain.train_sampler = sampler`` (or call
    ``set_epoch`` yourself) to get new batches every epoch.

    Arguments
    ---------
    corpora : sequence
        The corpus name of every dataset item (one entry per item).
    emotions : sequence
        The emotion label of every dataset item (same length as
        ``corpora``); labels are compared for equality only.
    batch_size : int
        Items per batch (at least 4).
    num_batches : int, optional
        Batches per epoch (default: ``len(items) // batch_size``, at
        least 1).
    seed : int
        Base seed; batches of epoch ``t`` use ``seed + t``.
    epoch : int
        The epoch to start at.
    emotion_policy : str
        ``"uniform"`` or ``"frequency"`` (see above).

    Example
    -------
    >>> corpora = ["iemocap"] * 8 + ["casia"] * 8
    >>> emotions = (["sad"] * 4 + ["angry"] * 2 + ["happy"] * 2) * 2
    >>> sampler = CrossCorpusBatchSampler(corpora, emotions, batch_size=8)
    >>> len(sampler)
    2
    >>> sampler.batch_quotas("sad")
    ({'casia': 2, 'iemocap': 2}, {'casia': 2, 'iemocap': 2})
    >>> batch = next(iter(sampler))
    >>> first = emotions[batch[0]]
    >>> [emotions[i] == first for i in batch]
    [True, True, True, True, False, False, False, False]
    >>> sorted(corpora[i] for i in batch[:4])
    ['casia', 'casia', 'iemocap', 'iemocap']
    """

    def __init__(
        self,
        corpora,
        emotions,
        batch_size=32,
        num_batches=None,
        seed=1234,
        epoch=0,
        emotion_policy="uniform",
    ):
        corpora = _as_list(corpora, "corpora")
        emotions = _as_list(emotions, "emotions")
        _check_arguments(corpora, emotions, batch_size, num_batches)
        if emotion_policy not in EMOTION_POLICIES:
            raise ValueError(
                f"CrossCorpusBatchSampler: emotion_policy must be one of "
                f"{EMOTION_POLICIES}, got {emotion_policy!r}"
            )
        self.batch_size = batch_size
        self.num_positives = batch_size // 2
        self.num_negatives = batch_size - self.num_positives
        self.num_batches = num_batches or max(1, len(corpora) // batch_size)
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.emotion_policy = emotion_policy
        self.corpus_names = sorted(set(corpora), key=str)
        self.emotion_names = sorted(set(emotions), key=str)
        self.pools = _group_indices(corpora, emotions)
        self.emotion_counts = {
            emotion: sum(len(by.get(emotion, [])) for by in self.pools.values())
            for emotion in self.emotion_names
        }
        self.eligible_emotions = _eligible_emotions(self.emotion_counts)
        self.emotion_weights = torch.tensor(
            [self.emotion_counts[e] for e in self.eligible_emotions],
            dtype=torch.float64,
        )
        self.positive_pools, self.negative_pools = self._build_pools()

    @classmethod
    def from_dataset(
        cls, dataset, corpus_key="corpus", emotion_key="emotion", **kwargs
    ):
        """Build the sampler from a SpeechBrain ``DynamicItemDataset``.

        Only ``corpus_key`` and ``emotion_key`` are computed (through
        ``dataset.output_keys_as``), so no audio is read.

        Arguments
        ---------
        dataset : speechbrain.dataio.dataset.DynamicItemDataset
            The (concatenated) training set; the sampler yields indices
            into it.
        corpus_key : str
            The key holding each item's corpus name.
        emotion_key : str
            The key holding each item's emotion label.
        **kwargs : dict
            Passed on to the constructor (``batch_size``, ``seed``, ...).

        Returns
        -------
        CrossCorpusBatchSampler
            The sampler over ``range(len(dataset))``.

        Example
        -------
        >>> from speechbrain.dataio.dataset import DynamicItemDataset
        >>> data = {
        ...     f"utt{i}": {"corpus": c, "emotion": e, "wav": "x.wav"}
        ...     for i, (c, e) in enumerate(
        ...         [("a", "sad"), ("a", "sad"), ("b", "sad"), ("b", "angry")]
        ...     )
        ... }
        >>> dataset = DynamicItemDataset(data, output_keys=["id", "wav"])
        >>> sampler = CrossCorpusBatchSampler.from_dataset(
        ...     dataset, batch_size=4
        ... )
        >>> sampler.eligible_emotions
        ['sad']
        >>> dataset[0]["id"]
        'utt0'
        """
        keys = [corpus_key, emotion_key]
        known = dataset.pipeline.key_to_node
        missing = [key for key in keys if key not in known]
        if missing:
            raise KeyError(
                f"CrossCorpusBatchSampler.from_dataset: the dataset has no "
                f"key {missing}; available keys: {sorted(known)}"
            )
        with dataset.output_keys_as(keys):
            rows = [dataset[index] for index in range(len(dataset))]
        corpora = [row[corpus_key] for row in rows]
        emotions = [row[emotion_key] for row in rows]
        return cls(corpora, emotions, **kwargs)

    def set_epoch(self, epoch):
        """Select the epoch whose batches the next ``__iter__`` yields.

        Arguments
        ---------
        epoch : int
            The epoch; batches are drawn with seed ``seed + epoch``.

        Example
        -------
        >>> sampler = CrossCorpusBatchSampler(
        ...     ["a"] * 8, ["sad", "angry"] * 4, batch_size=4, num_batches=3
        ... )
        >>> first = list(sampler)
        >>> sampler.set_epoch(1)
        >>> list(sampler) != first
        True
        >>> sampler.set_epoch(0)
        >>> list(sampler) == first
        True
        """
        self.epoch = int(epoch)

    def __len__(self):
        return self.num_batches

    def __iter__(self):
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        for _ in range(self.num_batches):
            yield self._draw_batch(generator)

    def batch_quotas(self, emotion, order=None):
        """Per-corpus numbers of positives and negatives for ``emotion``.

        Arguments
        ---------
        emotion : str
            An emotion label.
        order : sequence of str, optional
            The corpora's priority order for the remainder (default: the
            sorted corpus names). In a batch it is a seeded random
            permutation; negatives use it reversed.

        Returns
        -------
        positives : dict
            Corpus name -> number of positives (corpora that have
            ``emotion``).
        negatives : dict
            Corpus name -> number of negatives (corpora that have another
            emotion).

        Example
        -------
        >>> sampler = CrossCorpusBatchSampler(
        ...     ["a"] * 20 + ["b"] * 20,
        ...     ["sad", "angry"] * 10 + ["happy", "angry"] * 10,
        ...     batch_size=18,
        ... )
        >>> sampler.batch_quotas("sad")
        ({'a': 9}, {'a': 4, 'b': 5})
        >>> sampler.batch_quotas("angry", order=["b", "a"])
        ({'a': 4, 'b': 5}, {'a': 5, 'b': 4})
        """
        if emotion not in self.eligible_emotions:
            raise ValueError(
                f"CrossCorpusBatchSampler.batch_quotas: emotion {emotion!r} "
                f"is not eligible; eligible: {self.eligible_emotions}"
            )
        order = list(self.corpus_names if order is None else order)
        if sorted(order, key=str) != self.corpus_names:
            raise ValueError(
                f"CrossCorpusBatchSampler.batch_quotas: order {order} is not "
                f"a permutation of the corpora {self.corpus_names}"
            )
        positives = self._quotas(
            self.num_positives, self.positive_pools[emotion], order
        )
        negatives = self._quotas(
            self.num_negatives, self.negative_pools[emotion], order[::-1]
        )
        return positives, negatives

    def describe(self):
        """Summarise the corpora, emotions and quotas as a text table.

        Returns
        -------
        str
            One line per corpus (items per emotion) and one line per
            emotion (eligibility and quotas in the default order).

        Example
        -------
        >>> sampler = CrossCorpusBatchSampler(
        ...     ["a", "a", "b", "b"],
        ...     ["sad", "angry", "sad", "angry"],
        ...     batch_size=4,
        ... )
        >>> print(sampler.describe())
        CrossCorpusBatchSampler(corpora=2, emotions=2, batch_size=4, ...)
        corpus a: 2 items (angry=1, sad=1)
        corpus b: 2 items (angry=1, sad=1)
        emotion angry: 2 items, positives a=1 b=1, negatives a=1 b=1
        emotion sad: 2 items, positives a=1 b=1, negatives a=1 b=1
        """
        lines = [repr(self)]
        for corpus in self.corpus_names:
            counts = {
                emotion: len(pool)
                for emotion, pool in self.pools[corpus].items()
            }
            per_emotion = ", ".join(f"{e}={n}" for e, n in counts.items())
            total = sum(counts.values())
            lines.append(f"corpus {corpus}: {total} items ({per_emotion})")
        for emotion in self.emotion_names:
            count = self.emotion_counts[emotion]
            if emotion not in self.eligible_emotions:
                lines.append(f"emotion {emotion}: {count} items, not eligible")
                continue
            positives, negatives = self.batch_quotas(emotion)
            lines.append(
                f"emotion {emotion}: {count} items, "
                f"positives {_format_quotas(positives)}, "
                f"negatives {_format_quotas(negatives)}"
            )
        return "\n".join(lines)

    def __repr__(self):
        return (
            f"{type(self).__name__}(corpora={len(self.corpus_names)}, "
            f"emotions={len(self.emotion_names)}, "
            f"batch_size={self.batch_size}, num_batches={self.num_batches}, "
            f"emotion_policy={self.emotion_policy!r}, seed={self.seed}, "
            f"epoch={self.epoch})"
        )

    def _build_pools(self):
        """Index tensors of the positives and negatives per emotion, corpus."""
        positive_pools, negative_pools = {}, {}
        for emotion in self.eligible_emotions:
            positive_pools[emotion] = {}
            negative_pools[emotion] = {}
            for corpus in self.corpus_names:
                by_emotion = self.pools[corpus]
                positives = by_emotion.get(emotion, [])
                negatives = sorted(
                    index
                    for other, pool in by_emotion.items()
                    if other != emotion
                    for index in pool
                )
                positive_pools[emotion][corpus] = torch.tensor(
                    positives, dtype=torch.long
                )
                negative_pools[emotion][corpus] = torch.tensor(
                    negatives, dtype=torch.long
                )
        return positive_pools, negative_pools

    def _quotas(self, total, pools, order):
        """`spread_quota` over the corpora with items, in sorted order."""
        capacities = {c: len(pools[c]) for c in order if len(pools[c]) > 0}
        quotas = spread_quota(total, capacities)
        return {c: quotas[c] for c in self.corpus_names if c in quotas}

    def _pick_emotion(self, generator):
        if self.emotion_policy == "uniform":
            choice = torch.randint(
                len(self.eligible_emotions), (1,), generator=generator
            )
        else:
            choice = torch.multinomial(
                self.emotion_weights, 1, generator=generator
            )
        return self.eligible_emotions[int(choice)]

    def _draw_batch(self, generator):
        emotion = self._pick_emotion(generator)
        permutation = torch.randperm(
            len(self.corpus_names), generator=generator
        )
        order = [self.corpus_names[i] for i in permutation.tolist()]
        positives, negatives = self.batch_quotas(emotion, order)
        batch = []
        for quotas, pools in (
            (positives, self.positive_pools[emotion]),
            (negatives, self.negative_pools[emotion]),
        ):
            for corpus in self.corpus_names:
                if corpus in quotas:
                    batch += _draw(pools[corpus], quotas[corpus], generator)
        return batch


def _draw(pool, count, generator):
    """``count`` items of ``pool``: without replacement while it lasts."""
    taken = pool[torch.randperm(len(pool), generator=generator)[:count]]
    shortfall = count - len(taken)
    if shortfall > 0:
        again = torch.randint(len(pool), (shortfall,), generator=generator)
        taken = torch.cat([taken, pool[again]])
    return taken.tolist()


def _as_list(labels, name):
    """Labels as a plain list (tensors and arrays become Python scalars)."""
    if hasattr(labels, "tolist"):
        return labels.tolist()
    try:
        return list(labels)
    except TypeError:
        raise TypeError(
            f"CrossCorpusBatchSampler: {name} must be a sequence of labels, "
            f"got {type(labels).__name__}"
        ) from None


def _check_arguments(corpora, emotions, batch_size, num_batches):
    if len(corpora) != len(emotions):
        raise ValueError(
            f"CrossCorpusBatchSampler: corpora and emotions must have one "
            f"entry per item, got {len(corpora)} corpora and "
            f"{len(emotions)} emotions"
        )
    if not corpora:
        raise ValueError("CrossCorpusBatchSampler: no items (empty corpora)")
    if not _is_int(batch_size) or batch_size < MIN_BATCH_SIZE:
        raise ValueError(
            f"CrossCorpusBatchSampler: batch_size must be an integer >= "
            f"{MIN_BATCH_SIZE} (2 positives and 2 negatives), got "
            f"{batch_size!r}"
        )
    if num_batches is not None and (
        not _is_int(num_batches) or num_batches < 1
    ):
        raise ValueError(
            f"CrossCorpusBatchSampler: num_batches must be None or an "
            f"integer >= 1, got {num_batches!r}"
        )


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _group_indices(corpora, emotions):
    """corpus -> emotion -> item indices, both levels in sorted order."""
    pools = {}
    for index, (corpus, emotion) in enumerate(
        zip(corpora, emotions, strict=True)
    ):
        pools.setdefault(corpus, {}).setdefault(emotion, []).append(index)
    return {
        corpus: dict(sorted(pools[corpus].items(), key=lambda kv: str(kv[0])))
        for corpus in sorted(pools, key=str)
    }


def _eligible_emotions(emotion_counts):
    """Emotions with >= 2 items; raise if there is none or no negative."""
    if len(emotion_counts) < 2:
        (emotion,) = emotion_counts
        raise ValueError(
            f"CrossCorpusBatchSampler: every item has emotion {emotion!r}, "
            f"so no corpus has negatives for any emotion; contrastive "
            f"batches need at least two emotions"
        )
    eligible = [e for e, count in emotion_counts.items() if count >= 2]
    if not eligible:
        raise ValueError(
            f"CrossCorpusBatchSampler: no eligible emotion, each needs at "
            f"least 2 utterances (2 positives); counts: {emotion_counts}"
        )
    skipped = [e for e in emotion_counts if e not in eligible]
    if skipped:
        logger.warning(
            "CrossCorpusBatchSampler: emotions %s have fewer than 2 "
            "utterances and are never picked (they still serve as negatives)",
            skipped,
        )
    return eligible


def _format_quotas(quotas):
    return " ".join(f"{corpus}={count}" for corpus, count in quotas.items())
