"""Length-aware batching: batches of utterances of similar length.

A padded batch costs as much as its longest utterance times its size;
what the shorter ones lack is padding. Batches of utterances of similar
length keep the padding small:

* :func:`length_sorted_batches` cuts a list sorted by length, longest
  first, into batches (test sets and ``sercl predict``, whose order does
  not matter: each utterance's prediction is independent of its batch
  mates, and the predictions are keyed by utterance);
* :class:`LengthBucketBatchSampler` does that for training without giving
  up randomness: each epoch it shuffles the utterances, cuts the shuffled
  list into buckets of ``bucket_batches`` batches, sorts each bucket by
  length, cuts it into batches and shuffles the order of all batches.
  ``bucket_batches=1`` gives plain random batches; a bucket as large as
  the data set gives sorted batches in a random order.

:func:`padding_fraction` measures what is left: padded samples over all
samples of the padded batches.

Authors
 * speechbrain-sercl developers
"""

import torch

__all__ = [
    "BATCHING_POLICIES",
    "LengthBucketBatchSampler",
    "effective_lengths",
    "length_sorted_batches",
    "loader_kwargs",
    "padding_fraction",
]

# "plain": what a DataLoader does with a batch size (shuffled batches in
# training, the data's order at test time); "length": length-aware batches.
BATCHING_POLICIES = ("plain", "length")


def length_sorted_batches(lengths, batch_size):
    """Batches of consecutive items sorted by length, longest first.

    Items of equal length keep their order (a stable sort), so the batches
    depend on the lengths alone.

    Arguments
    ---------
    lengths : sequence of float
        The length of every item (any unit).
    batch_size : int
        Items per batch; the last batch may be smaller.

    Returns
    -------
    list of list of int
        Item indices; every item exactly once.

    Example
    -------
    >>> length_sorted_batches([1.0, 5.0, 2.0, 5.0, 3.0], batch_size=2)
    [[1, 3], [4, 2], [0]]
    """
    _check_batch_size(batch_size)
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])
    return _cut(order, batch_size)


def padding_fraction(lengths, batches):
    """Padded share of the samples of padded batches.

    Each batch is padded to its longest item: the fraction is
    ``sum(len(batch) * longest - sum(lengths)) / sum(len(batch) * longest)``
    over the batches (each batch weighs by its padded size, as its cost
    does).

    Arguments
    ---------
    lengths : sequence of float
        The length of every item.
    batches : iterable of list of int
        Item indices per batch.

    Returns
    -------
    float
        In [0, 1); 0 when no batch has padding.

    Example
    -------
    >>> padding_fraction([1.0, 3.0, 2.0, 2.0], [[0, 1], [2, 3]])
    0.2
    """
    padded, total = 0.0, 0.0
    for batch in batches:
        sizes = [lengths[index] for index in batch]
        area = len(sizes) * max(sizes)
        padded += area - sum(sizes)
        total += area
    return padded / total if total else 0.0


def effective_lengths(durations, max_seconds=None):
    """Seconds each item has after cropping or truncation.

    Arguments
    ---------
    durations : sequence of float
        Durations in seconds (a manifest's ``duration``).
    max_seconds : float, optional
        The training crop or the test truncation; None keeps them whole.

    Returns
    -------
    list of float

    Example
    -------
    >>> effective_lengths([1.5, 8.0], max_seconds=6.0)
    [1.5, 6.0]
    """
    if max_seconds is None:
        return [float(seconds) for seconds in durations]
    return [min(float(seconds), max_seconds) for seconds in durations]


def loader_kwargs(policy, lengths, batch_size, train, seed, bucket_batches):
    """The batching options of a SpeechBrain data loader.

    Arguments
    ---------
    policy : str
        One of :data:`BATCHING_POLICIES`.
    lengths : sequence of float
        The length of every item of the data set (for ``"length"``).
    batch_size : int
        Items per batch.
    train : bool
        Training (shuffled batches) or test (a fixed order).
    seed : int
        The seed of the training batches.
    bucket_batches : int
        Batches per bucket of :class:`LengthBucketBatchSampler`.

    Returns
    -------
    dict
        ``batch_size`` (and ``shuffle`` with a seeded ``generator`` in
        training), or ``batch_sampler``.

    Example
    -------
    >>> loader_kwargs("length", [2.0, 1.0, 3.0], 2, False, 0, 10)
    {'batch_sampler': [[2, 0], [1]]}
    >>> loader_kwargs("plain", [2.0, 1.0, 3.0], 2, False, 0, 10)
    {'batch_size': 2}
    """
    if policy not in BATCHING_POLICIES:
        raise ValueError(
            f"batching must be one of {BATCHING_POLICIES}, got {policy!r}"
        )
    if policy == "plain" and not train:
        return {"batch_size": batch_size}
    if policy == "plain":
        generator = torch.Generator().manual_seed(seed)
        return {
            "batch_size": batch_size,
            "shuffle": True,
            "generator": generator,
        }
    if not train:
        return {"batch_sampler": length_sorted_batches(lengths, batch_size)}
    sampler = LengthBucketBatchSampler(
        lengths, batch_size, bucket_batches=bucket_batches, seed=seed
    )
    return {"batch_sampler": sampler}


class LengthBucketBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of utterances of similar length.

    Each epoch: a random permutation of the items, cut into buckets of
    ``batch_size * bucket_batches`` items; each bucket sorted by length
    (longest first, stable) and cut into batches; then the order of all
    the batches shuffled. Every item is in exactly one batch of an epoch;
    only the last bucket's last batch may be smaller than ``batch_size``.

    The batches depend only on the lengths, ``seed`` and ``epoch``: each
    ``__iter__`` seeds a private ``torch.Generator`` with ``seed + epoch``,
    so a run resumed mid-epoch (SpeechBrain replays the epoch's batches and
    skips those done) and every process of a DDP run get the same batches.
    The sampler never splits by rank: under DDP, SpeechBrain's ``Brain``
    wraps it in ``DistributedSamplerWrapper``, which hands each rank a
    disjoint share of whole batches. Outside DDP, ``EmotionBrain`` calls
    ``set_epoch`` on it (see ``EmotionBrain.make_dataloader``).

    Arguments
    ---------
    lengths : sequence of float
        The length of every item (e.g. seconds after cropping).
    batch_size : int
        Items per batch.
    bucket_batches : int
        Batches per bucket: 1 gives random batches; more gives less
        padding and less randomness in which items share a batch.
    seed : int
        Base seed; epoch ``t`` uses ``seed + t``.
    epoch : int
        The epoch to start at.

    Example
    -------
    >>> lengths = [1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0]
    >>> sampler = LengthBucketBatchSampler(lengths, 2, bucket_batches=4)
    >>> batches = list(sampler)
    >>> sorted(sorted(lengths[i] for i in batch) for batch in batches)
    [[1.0, 2.0], [3.0, 4.0], [6.0, 7.0], [8.0, 9.0]]
    >>> sampler.set_epoch(1)
    >>> list(sampler) != batches
    True
    """

    def __init__(self, lengths, batch_size, bucket_batches=10, seed=0, epoch=0):
        _check_batch_size(batch_size)
        if not (isinstance(bucket_batches, int) and bucket_batches > 0):
            raise ValueError(
                f"LengthBucketBatchSampler: bucket_batches must be a "
                f"positive integer, got {bucket_batches!r}"
            )
        if len(lengths) == 0:
            raise ValueError("LengthBucketBatchSampler: no items")
        self.lengths = [float(length) for length in lengths]
        self.batch_size = batch_size
        self.bucket_batches = bucket_batches
        self.seed = int(seed)
        self.epoch = int(epoch)

    def set_epoch(self, epoch):
        """Select the epoch whose batches the next ``__iter__`` yields.

        Arguments
        ---------
        epoch : int
            The epoch; batches are drawn with seed ``seed + epoch``.
        """
        self.epoch = int(epoch)

    def __len__(self):
        bucket = self.batch_size * self.bucket_batches
        full, rest = divmod(len(self.lengths), bucket)
        return full * self.bucket_batches + -(-rest // self.batch_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        permutation = torch.randperm(len(self.lengths), generator=generator)
        bucket_size = self.batch_size * self.bucket_batches
        batches = []
        for start in range(0, len(self.lengths), bucket_size):
            bucket = permutation[start : start + bucket_size].tolist()
            bucket.sort(key=lambda index: -self.lengths[index])
            batches += _cut(bucket, self.batch_size)
        order = torch.randperm(len(batches), generator=generator)
        return iter([batches[index] for index in order.tolist()])


def _cut(items, size):
    """Consecutive slices of ``size`` items (the last may be smaller)."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def _check_batch_size(batch_size):
    if not (isinstance(batch_size, int) and batch_size > 0):
        raise ValueError(
            f"batch_size must be a positive integer, got {batch_size!r}"
        )
