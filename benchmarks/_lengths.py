"""Utterance lengths like IEMOCAP's and CASIA's, for the benchmarks.

No corpus is on this machine, so the lengths are drawn from log-normal
fits to published figures, clipped to each corpus's range:

* IEMOCAP (5531 utterances of the 4-class set): mean about 4.5 s, range
  0.6 to 34 s, long right tail. Log-normal with ``mu = ln(3.4)``,
  ``sigma = 0.75`` (median 3.4 s, mean 4.5 s), clipped to [0.6, 34] s.
* CASIA (1200 utterances of the public part): about 1 to 4 s, mean about
  2 s. Log-normal with ``mu = ln(1.9)``, ``sigma = 0.3`` (mean 2.0 s),
  clipped to [1, 4] s.

The means and ranges are the ones the issue quotes; the median of
IEMOCAP and both sigmas are assumptions, not fits to the real files.
"""

import math

import numpy as np

CORPORA = {
    # name: (utterances, mu, sigma, shortest, longest)
    "iemocap": (5531, math.log(3.4), 0.75, 0.6, 34.0),
    "casia": (1200, math.log(1.9), 0.3, 1.0, 4.0),
}
EMOTIONS = {
    "iemocap": ("angry", "happy", "neutral", "sad"),
    "casia": ("angry", "fear", "happy", "neutral", "sad", "surprise"),
}


def corpus_lengths(name, seed=0, count=None):
    """Seconds of each utterance of an IEMOCAP- or CASIA-like corpus.

    Arguments
    ---------
    name : str
        ``"iemocap"`` or ``"casia"``.
    seed : int
        Seed of the draw.
    count : int, optional
        How many (default: the corpus's size).

    Returns
    -------
    numpy.ndarray
        Lengths in seconds.
    """
    size, mu, sigma, shortest, longest = CORPORA[name]
    generator = np.random.default_rng(seed)
    lengths = generator.lognormal(mu, sigma, count or size)
    return np.clip(lengths, shortest, longest)


def corpus_emotions(name, count, seed=0):
    """Uniformly drawn emotion labels of the corpus (for stage-1 batches)."""
    generator = np.random.default_rng(seed + 1)
    labels = EMOTIONS[name]
    return [labels[i] for i in generator.integers(len(labels), size=count)]
