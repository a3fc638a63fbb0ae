"""Corpus preparation: one reader module per corpus and a registry of them.

Each corpus module (``iemocap.py``, ``casia.py``) turns its release layout
into a SpeechBrain JSON manifest through the shared steps of
``manifest.py``; ``audio.py`` is the one audio reader of the package.

To add a corpus, write ``data/<corpus>.py`` with a
``prepare_<corpus>(data_folder, save_folder, ...)`` that returns a
:class:`~speechbrain_sercl.data.manifest.PreparationReport` (see
``casia.py`` for the pattern), then add one entry to ``PREPARERS``; the
``sercl prepare`` command picks it up from there.

Example
-------
>>> sorted(PREPARERS)
['casia', 'iemocap']
"""

from speechbrain_sercl.data.casia import prepare_casia
from speechbrain_sercl.data.iemocap import prepare_iemocap

__all__ = ["PREPARERS", "prepare_corpus"]

PREPARERS = {"iemocap": prepare_iemocap, "casia": prepare_casia}


def prepare_corpus(name, data_folder, save_folder, **options):
    """Prepare the corpus called ``name`` with its registered reader.

    Arguments
    ---------
    name : str
        A key of ``PREPARERS``.
    data_folder : str or os.PathLike
        The corpus release folder.
    save_folder : str or os.PathLike
        Where the manifest goes.
    **options
        Keyword options of that reader (e.g. ``improvised_only``).

    Returns
    -------
    PreparationReport
        The reader's report.

    Raises
    ------
    ValueError
        When no reader is registered under ``name``.

    Example
    -------
    >>> prepare_corpus("msp", "data", "out")
    Traceback (most recent call last):
    ...
    ValueError: unknown corpus 'msp'; known corpora: casia, iemocap
    """
    if name not in PREPARERS:
        raise ValueError(
            f"unknown corpus {name!r}; known corpora: "
            f"{', '.join(sorted(PREPARERS))}"
        )
    return PREPARERS[name](data_folder, save_folder, **options)
