"""Data preparation and fold splits shared by every recipe.

A recipe names its corpora in the YAML (``corpora``: name -> ``data_folder``
and ``prepare`` function). :func:`prepare_corpora` writes each corpus's
manifest and fold assignment once (on the main process); every process then
reads them back with :func:`load_fold_split`, which also writes the exact
train/test utterance lists of the run into the run's output folder, so the
protocol of every result is on disk next to it.

Authors
 * speechbrain-sercl developers
"""

import json
import os

from speechbrain.utils.distributed import run_on_main

from speechbrain_sercl.data.folds import load_or_create_folds, run_split
from speechbrain_sercl.data.pipeline import load_manifests

__all__ = ["FoldSplit", "load_fold_split", "prepare_corpora", "prepare_run"]

FOLD_SPLIT = "fold_split.json"


def prepare_corpora(corpora, prepared_folder, protocol, n_folds, fold_seed):
    """Prepare every corpus and its folds (idempotent; main process only).

    Arguments
    ---------
    corpora : dict
        name -> {"data_folder": str, "prepare": callable(data_folder,
        save_folder)}.
    prepared_folder : str
        Manifests go to ``<prepared_folder>/<name>/manifest.json`` and
        folds beside them.
    protocol : str
        ``paper`` or ``speaker``.
    n_folds : int
        Folds of the ``paper`` protocol.
    fold_seed : int
        Seed of the ``paper`` folds.
    """
    for name, spec in corpora.items():
        save_folder = os.path.join(prepared_folder, name)
        spec["prepare"](
            data_folder=spec["data_folder"], save_folder=save_folder
        )
        load_or_create_folds(
            _manifest_path(prepared_folder, name),
            protocol,
            n_folds=n_folds,
            seed=fold_seed,
        )


class FoldSplit:
    """The utterances of one run: training and test ids per corpus.

    Arguments
    ---------
    manifest : dict
        utterance id -> entry, all corpora merged.
    train_ids : dict
        corpus name -> training ids of this run.
    test_ids : dict
        corpus name -> test ids of this run.

    Example
    -------
    >>> split = FoldSplit({}, {"a": ["a1", "a2"], "b": ["b1"]}, {"a": ["a3"]})
    >>> split.train(), split.test("a")
    (['a1', 'a2', 'b1'], ['a3'])
    """

    def __init__(self, manifest, train_ids, test_ids):
        self.manifest = manifest
        self.train_ids = train_ids
        self.test_ids = test_ids

    def train(self, corpus=None):
        """Training ids of one corpus, or of all corpora together."""
        return self._ids(self.train_ids, corpus)

    def test(self, corpus=None):
        """Test ids of one corpus, or of all corpora together."""
        return self._ids(self.test_ids, corpus)

    @staticmethod
    def _ids(by_corpus, corpus):
        if corpus is not None:
            return list(by_corpus[corpus])
        return [utt for ids in by_corpus.values() for utt in ids]

    def write(self, path):
        """Write the split (corpus -> train / test ids) as JSON.

        Arguments
        ---------
        path : str
            The file to write.
        """
        split = {
            name: {"train": self.train(name), "test": self.test(name)}
            for name in self.train_ids
        }
        with open(path, "w", encoding="utf-8") as out:
            json.dump(split, out, indent=1)


def load_fold_split(
    corpora, prepared_folder, protocol, n_folds, fold_seed, fold, output_folder
):
    """Read the prepared manifests and folds and select run ``fold``.

    Run ``i`` tests on fold ``i mod K_c`` of corpus ``c`` and trains on the
    rest of it. The split is written to ``<output_folder>/fold_split.json``.

    Arguments
    ---------
    corpora : iterable of str
        Corpus names (prepared with :func:`prepare_corpora`).
    prepared_folder : str
        Where the manifests and folds are.
    protocol : str
        ``paper`` or ``speaker``.
    n_folds : int
        Folds of the ``paper`` protocol (must match what is on disk).
    fold_seed : int
        Seed of the ``paper`` folds (must match what is on disk).
    fold : int
        The run index.
    output_folder : str
        The run's output folder.

    Returns
    -------
    FoldSplit
        Manifest and ids of this run.
    """
    names = list(corpora)
    paths = [_manifest_path(prepared_folder, name) for name in names]
    train_ids, test_ids = {}, {}
    for name, path in zip(names, paths, strict=True):
        folds = load_or_create_folds(
            path, protocol, n_folds=n_folds, seed=fold_seed
        )
        train_ids[name], test_ids[name] = run_split(folds, fold)
    split = FoldSplit(load_manifests(paths), train_ids, test_ids)
    run_on_main(split.write, args=[os.path.join(output_folder, FOLD_SPLIT)])
    return split


def _manifest_path(prepared_folder, name):
    return os.path.join(prepared_folder, name, "manifest.json")


def prepare_run(hparams):
    """Prepare the recipe's corpora (main process) and load its fold split.

    Arguments
    ---------
    hparams : dict
        The recipe's hparams: ``corpora``, ``prepared_folder``,
        ``protocol``, ``n_folds``, ``fold_seed``, ``fold``,
        ``output_folder``.

    Returns
    -------
    FoldSplit
        Manifest and ids of this run.
    """
    protocol = {
        key: hparams[key] for key in ("protocol", "n_folds", "fold_seed")
    }
    run_on_main(
        prepare_corpora,
        kwargs={
            "corpora": hparams["corpora"],
            "prepared_folder": hparams["prepared_folder"],
            **protocol,
        },
    )
    return load_fold_split(
        hparams["corpora"],
        hparams["prepared_folder"],
        fold=hparams["fold"],
        output_folder=hparams["output_folder"],
        **protocol,
    )
