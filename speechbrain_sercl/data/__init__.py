"""Corpus preparation: one reader module per corpus and a registry of them.

Each corpus module (``iemocap.py``, ``casia.py``, ``emodb.py``,
``ravdess.py``, ``cremad.py``, ``esd.py``) turns its release layout
into a SpeechBrain JSON manifest through the shared steps of
``manifest.py``; ``audio.py`` is the one audio reader of the package,
``folds.py`` assigns utterances to folds and selects a run's split, and
``corpora.py`` holds the registry that the recipes, the fold runner and
``sercl prepare`` read. ``synthetic.py`` (the project's formant
synthesiser) and ``espeak.py`` (espeak-ng) generate small corpora in the
release layouts for the demo and the tests, which the real readers read.

To add a corpus, write ``data/<corpus>.py`` with a
``prepare_<corpus>(data_folder, save_folder, corpus_name=..., ...)`` that
returns a :class:`~speechbrain_sercl.data.manifest.PreparationReport` (see
``casia.py`` for the pattern), then register it with
:func:`~speechbrain_sercl.data.corpora.register_corpus` (see the end of
``corpora.py``).

Example
-------
>>> sorted(name for name in CORPORA if "_" not in name)
['casia', 'cremad', 'emodb', 'esd', 'iemocap', 'ravdess']
"""

from speechbrain_sercl.data.corpora import (
    CORPORA,
    Corpus,
    get_corpus,
    prepare_corpus,
    register_corpus,
)

__all__ = [
    "CORPORA",
    "Corpus",
    "get_corpus",
    "prepare_corpus",
    "register_corpus",
]
