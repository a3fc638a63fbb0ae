"""The corpus registry, and preparing the corpora of a run.

A :class:`Corpus` entry holds what the package knows of one corpus: its
reader (``prepare(data_folder, save_folder, corpus_name=..., **options)``,
returning a :class:`~speechbrain_sercl.data.manifest.PreparationReport`),
the canonical emotions it yields (the classifier's classes), and the unit
of its speaker-independent folds. Adding a corpus is one reader module in
``speechbrain_sercl/data/`` plus one :func:`register_corpus` call; a corpus
outside the package is named in a YAML as ``module:attribute`` (an
importable :class:`Corpus`), so the recipes run by ``sercl folds`` in their
own processes find it too.

A YAML names the corpora of a run by name, release folder, reader (default:
the name) and reader options (default: none)::

    corpora:
        iemocap:
            data_folder: /data/IEMOCAP_full_release
        casia:
            data_folder: /data/CASIA
            options: {validate_audio: False}

Each corpus is prepared once into
:func:`speechbrain_sercl.layout.corpus_folder` (keyed by the release
folder, the reader and its options, not by the experiment), with its folds
beside its manifest. A release whose files changed is prepared again there,
and gets new folds (the old ones are kept, see
:func:`speechbrain_sercl.data.folds.load_or_create_folds`).

Example
-------
>>> sorted(name for name in CORPORA if "_" not in name)
['casia', 'cremad', 'emodb', 'esd', 'iemocap', 'ravdess']
>>> number_of_classes("iemocap"), number_of_classes("casia")
(4, 6)
"""

import importlib
import os
from dataclasses import dataclass
from functools import partial

from speechbrain.utils.distributed import ddp_barrier, if_main_process

from speechbrain_sercl import layout
from speechbrain_sercl.config import run_of
from speechbrain_sercl.data.casia import CASIA_EMOTIONS, prepare_casia
from speechbrain_sercl.data.cremad import CREMAD_EMOTIONS, prepare_cremad
from speechbrain_sercl.data.emodb import EMODB_EMOTIONS, prepare_emodb
from speechbrain_sercl.data.esd import ESD_EMOTIONS, prepare_esd
from speechbrain_sercl.data.espeak import prepare_espeak
from speechbrain_sercl.data.folds import PROTOCOLS as FOLD_PROTOCOLS
from speechbrain_sercl.data.folds import (
    load_or_create_folds,
    read_folds,
    select_run,
)
from speechbrain_sercl.data.iemocap import IEMOCAP_EMOTIONS, prepare_iemocap
from speechbrain_sercl.data.manifest import MANIFEST_FILE, prepared_release
from speechbrain_sercl.data.ravdess import RAVDESS_EMOTIONS, prepare_ravdess
from speechbrain_sercl.data.synthetic import (
    SYNTHETIC_EMODB_EMOTIONS,
    prepare_synthetic,
)

__all__ = [
    "CORPORA",
    "Corpus",
    "corpus_specs",
    "fold_protocol",
    "get_corpus",
    "number_of_classes",
    "prepare_corpora",
    "prepare_corpus",
    "prepare_run",
    "register_corpus",
    "single_corpus",
]

SPEAKER_GROUPS = ("session", "speaker")
SPEC_KEYS = ("data_folder", "reader", "options")
# An experiment's protocols (see fold_protocol).
PROTOCOLS = (*FOLD_PROTOCOLS, "sessions")


@dataclass(frozen=True)
class Corpus:
    """What the package knows of one corpus.

    Arguments
    ---------
    name : str
        The registry name (``reader`` in a YAML).
    prepare : callable
        ``prepare(data_folder, save_folder, corpus_name=..., **options)``
        writing ``save_folder/manifest.json`` and returning a
        ``PreparationReport``.
    emotions : tuple of str
        The canonical emotions the reader keeps.
    speaker_groups : str
        The held-out unit of the ``speaker`` protocol: ``session`` or
        ``speaker``.
    layout : str
        The release layout the reader expects (shown to users).

    Example
    -------
    >>> corpus = get_corpus("casia")
    >>> corpus.speaker_groups, len(corpus.emotions)
    ('speaker', 6)
    """

    name: str
    prepare: object
    emotions: tuple
    speaker_groups: str
    layout: str

    def __post_init__(self):
        if self.speaker_groups not in SPEAKER_GROUPS:
            raise ValueError(
                f"corpus {self.name!r}: speaker_groups must be one of "
                f"{SPEAKER_GROUPS}, got {self.speaker_groups!r}"
            )
        if not callable(self.prepare):
            raise TypeError(f"corpus {self.name!r}: prepare is not callable")


CORPORA = {}


def register_corpus(corpus):
    """Add a corpus to the registry (an existing name is an error).

    Arguments
    ---------
    corpus : Corpus
        The entry.

    Returns
    -------
    Corpus
        ``corpus``.

    Example
    -------
    >>> register_corpus(CORPORA["casia"])
    Traceback (most recent call last):
    ...
    ValueError: a corpus named 'casia' is registered already
    """
    if corpus.name in CORPORA:
        raise ValueError(
            f"a corpus named {corpus.name!r} is registered already"
        )
    CORPORA[corpus.name] = corpus
    return corpus


def get_corpus(reader):
    """The registry entry named ``reader``, or a ``module:attribute`` one.

    Arguments
    ---------
    reader : str
        A registry name, or ``package.module:ATTRIBUTE`` naming a
        :class:`Corpus` importable in every process of the run.

    Returns
    -------
    Corpus
        The entry.

    Example
    -------
    >>> get_corpus("speechbrain_sercl.data.corpora:IEMOCAP").name
    'iemocap'
    >>> get_corpus("msp")
    Traceback (most recent call last):
    ...
    ValueError: unknown corpus reader 'msp'; registered: casia, cremad, ...
    """
    if reader in CORPORA:
        return CORPORA[reader]
    module_name, colon, attribute = str(reader).partition(":")
    if not colon:
        raise ValueError(
            f"unknown corpus reader {reader!r}; registered: "
            f"{', '.join(sorted(CORPORA))} (or give module:attribute)"
        )
    corpus = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(corpus, Corpus):
        raise ValueError(f"{reader!r} does not name a Corpus")
    return corpus


def number_of_classes(reader):
    """How many emotions the classifier of a corpus predicts.

    Arguments
    ---------
    reader : str
        As for :func:`get_corpus`.

    Returns
    -------
    int
        The number of emotions the reader keeps.

    Example
    -------
    >>> number_of_classes("synthetic_casia")
    6
    """
    return len(get_corpus(reader).emotions)


def prepare_corpus(reader, data_folder, save_folder, **options):
    """Prepare one corpus with its registered reader.

    Arguments
    ---------
    reader : str
        As for :func:`get_corpus`.
    data_folder : str
        The release folder.
    save_folder : str
        Where the manifest goes.
    **options
        The reader's options (e.g. ``improvised_only`` for IEMOCAP).

    Returns
    -------
    PreparationReport
        The reader's report.
    """
    return get_corpus(reader).prepare(data_folder, save_folder, **options)


def corpus_specs(corpora):
    """Normalise a YAML's ``corpora`` mapping.

    Arguments
    ---------
    corpora : dict
        name -> release folder, or name -> {``data_folder``, ``reader``
        (default: the name), ``options`` (default: none)}.

    Returns
    -------
    dict
        name -> {"data_folder": str, "reader": str, "options": dict}.

    Example
    -------
    >>> corpus_specs({"casia": "/data/CASIA"})
    {'casia': {'data_folder': '/data/CASIA', 'reader': 'casia', 'options': {}}}
    >>> corpus_specs({"casia": {"folder": "/data/CASIA"}})
    Traceback (most recent call last):
    ...
    ValueError: corpora.casia: unknown keys ['folder'] ...
    """
    if not corpora:
        raise ValueError("corpora: name at least one corpus")
    specs = {}
    for name, spec in dict(corpora).items():
        if not isinstance(spec, dict):
            spec = {"data_folder": spec}
        unknown = sorted(set(spec) - set(SPEC_KEYS))
        if unknown or "data_folder" not in spec:
            raise ValueError(
                f"corpora.{name}: unknown keys {unknown} or no data_folder; "
                "give data_folder and optionally reader and options"
            )
        specs[str(name)] = {
            "data_folder": str(spec["data_folder"]),
            "reader": str(spec.get("reader") or name),
            "options": dict(spec.get("options") or {}),
        }
    return specs


def single_corpus(name, data_folder, reader=None, options=None):
    """The ``corpora`` mapping of a one-corpus YAML (stage 2, FT).

    Arguments
    ---------
    name : str
        The corpus name.
    data_folder : str
        Its release folder.
    reader : str, optional
        Its reader (default: the name).
    options : dict, optional
        The reader's options.

    Returns
    -------
    dict
        As :func:`corpus_specs` returns it.

    Example
    -------
    >>> single_corpus("casia", "/data/CASIA")["casia"]["reader"]
    'casia'
    """
    spec = {"data_folder": data_folder, "reader": reader, "options": options}
    return corpus_specs({name: spec})


def _manifest_path(prepared_folder, name, spec):
    folder = layout.corpus_folder(
        prepared_folder,
        name,
        spec["data_folder"],
        spec["reader"],
        spec["options"],
    )
    return os.path.join(folder, MANIFEST_FILE)


def prepare_corpora(corpora, prepared_folder, protocol, n_folds, fold_seed):
    """Prepare every corpus and its folds, each once (idempotent).

    Arguments
    ---------
    corpora : dict
        A YAML's ``corpora`` (see :func:`corpus_specs`).
    prepared_folder : str
        The root of the prepared corpora.
    protocol : str
        The experiment's protocol (see :func:`fold_protocol`).
    n_folds : int
        Folds of the ``paper`` protocol.
    fold_seed : int
        Seed of the ``paper`` folds.

    Returns
    -------
    dict
        name -> (manifest path, ``{utt_id: fold}``).
    """
    prepared = {}
    for name, spec in corpus_specs(corpora).items():
        corpus = get_corpus(spec["reader"])
        manifest = _manifest_path(prepared_folder, name, spec)
        corpus.prepare(
            spec["data_folder"],
            os.path.dirname(manifest),
            corpus_name=name,
            **spec["options"],
        )
        folds_protocol = fold_protocol(protocol, corpus)
        folds = load_or_create_folds(
            manifest,
            folds_protocol,
            n_folds=n_folds,
            seed=fold_seed,
            group_by=(
                corpus.speaker_groups if folds_protocol == "speaker" else None
            ),
            preparation=prepared_release(os.path.dirname(manifest)),
        )
        prepared[name] = (manifest, folds)
    return prepared


def fold_protocol(protocol, corpus):
    """The folds of one corpus under an experiment's protocol.

    ``paper`` (stratified random k-fold) and ``speaker`` (one fold per
    session or speaker, see :class:`Corpus`) apply to every corpus.
    ``sessions`` is the common reading of the paper's "5 parts", chosen per
    corpus by its registry entry: speaker folds for a corpus grouped by
    session (IEMOCAP: leave one session out; EmoDB, RAVDESS, CREMA-D and
    ESD: their five speaker groups), stratified folds for the others
    (CASIA: 5-fold).

    Arguments
    ---------
    protocol : str
        ``paper``, ``speaker`` or ``sessions``.
    corpus : Corpus
        The corpus.

    Returns
    -------
    str
        ``paper`` or ``speaker``: the folds file the corpus uses.

    Example
    -------
    >>> fold_protocol("sessions", CORPORA["iemocap"])
    'speaker'
    >>> fold_protocol("sessions", CORPORA["casia"])
    'paper'
    >>> fold_protocol("speaker", CORPORA["casia"])
    'speaker'
    """
    if protocol not in PROTOCOLS:
        raise ValueError(
            f"protocol must be one of {PROTOCOLS}, got {protocol!r}"
        )
    if protocol == "sessions":
        return "speaker" if corpus.speaker_groups == "session" else "paper"
    return protocol


def prepare_run(hparams):
    """Prepare a recipe's corpora (main process) and select its run.

    The main process prepares (or finds prepared) every manifest and its
    folds; the other processes then read the folds it wrote. Each process
    reads each folds file once.

    Arguments
    ---------
    hparams : dict
        The recipe's hparams: ``corpora``, ``prepared_folder``,
        ``protocol``, ``n_folds``, ``fold_seed``, ``run``,
        ``output_folder``.

    Returns
    -------
    FoldSplit
        Manifest and ids of this run (also written to the output folder).
    """
    protocol = hparams["protocol"]
    prepared = None
    if if_main_process():
        prepared = prepare_corpora(
            hparams["corpora"],
            hparams["prepared_folder"],
            protocol,
            hparams["n_folds"],
            hparams["fold_seed"],
        )
    ddp_barrier()
    if prepared is None:
        prepared = {}
        for name, spec in corpus_specs(hparams["corpora"]).items():
            manifest = _manifest_path(hparams["prepared_folder"], name, spec)
            corpus = get_corpus(spec["reader"])
            folds_protocol = fold_protocol(protocol, corpus)
            prepared[name] = (manifest, read_folds(manifest, folds_protocol))
    output_folder = hparams["output_folder"]
    run = run_of(hparams, os.path.join(output_folder, "hyperparams.yaml"))
    return select_run(prepared, run, output_folder)


IEMOCAP = register_corpus(
    Corpus(
        name="iemocap",
        prepare=prepare_iemocap,
        emotions=IEMOCAP_EMOTIONS,
        speaker_groups="session",
        layout="IEMOCAP_full_release/Session1..5/sentences/wav/<dialog>/"
        "<utt>.wav, labels in Session*/dialog/EmoEvaluation/<dialog>.txt",
    )
)
CASIA = register_corpus(
    Corpus(
        name="casia",
        prepare=prepare_casia,
        emotions=CASIA_EMOTIONS,
        speaker_groups="speaker",
        layout="<root>/<speaker>/<emotion>/<NNN>.wav",
    )
)
# Corpora without sessions: the session is one of five speaker groups
# (speechbrain_sercl.data.speaker_groups), so the speaker protocol has
# five folds.
EMODB = register_corpus(
    Corpus(
        name="emodb",
        prepare=prepare_emodb,
        emotions=EMODB_EMOTIONS,
        speaker_groups="session",
        layout="<root>/wav/<speaker:2><text:3><emotion letter><version>.wav"
        " (03a01Fa.wav)",
    )
)
RAVDESS = register_corpus(
    Corpus(
        name="ravdess",
        prepare=prepare_ravdess,
        emotions=RAVDESS_EMOTIONS,
        speaker_groups="session",
        layout="<root>/Actor_NN/03-01-<emotion>-<intensity>-<statement>-"
        "<repetition>-<actor>.wav",
    )
)
CREMAD = register_corpus(
    Corpus(
        name="cremad",
        prepare=prepare_cremad,
        emotions=CREMAD_EMOTIONS,
        speaker_groups="session",
        layout="<root>/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav",
    )
)
ESD = register_corpus(
    Corpus(
        name="esd",
        prepare=prepare_esd,
        emotions=ESD_EMOTIONS,
        speaker_groups="session",
        layout="<root>/<speaker>/<Emotion>/[train|evaluation|test/]"
        "<speaker>_<n>.wav",
    )
)


def _register_generated(source, prepare, description):
    """Register the IEMOCAP-, CASIA- and EmoDB-like corpora of one
    synthetic speech source as ``<source>_iemocap`` and so on."""
    layouts = {
        "iemocap": "<root>/IEMOCAP_full_release (IEMOCAP's layout)",
        "casia": "<root>/CASIA (CASIA's layout)",
        "emodb": "<root>/EmoDB (EmoDB's layout, five emotions)",
    }
    emotions = {
        "iemocap": IEMOCAP_EMOTIONS,
        "casia": CASIA_EMOTIONS,
        "emodb": SYNTHETIC_EMODB_EMOTIONS,
    }
    groups = {"iemocap": "session", "casia": "speaker", "emodb": "session"}
    for corpus, layout_text in layouts.items():
        register_corpus(
            Corpus(
                name=f"{source}_{corpus}",
                prepare=partial(prepare, corpus=corpus),
                emotions=emotions[corpus],
                speaker_groups=groups[corpus],
                layout=f"generated by {description}: {layout_text}",
            )
        )


_register_generated("synthetic", prepare_synthetic, "the formant synthesiser")
_register_generated("espeak", prepare_espeak, "espeak-ng")
