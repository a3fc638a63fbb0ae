"""Cross-validation folds: the two protocols, written to disk and reused.

Two protocols assign every utterance of a manifest to a fold:

- ``"paper"``: stratified random k-fold, per corpus and emotion. Each
  class's utterances are shuffled (seeded) and dealt round-robin over the
  folds, the dealer starting at a seeded fold and carrying on from class to
  class, so each fold holds ``floor`` or ``ceil`` of ``n_class / k`` of every
  class and the fold sizes differ by at most one.
- ``"speaker"``: one fold per speaker group, the folds sorted by group name.
  A corpus is grouped by ``session`` when each of its sessions holds more
  than one speaker (IEMOCAP: leave-one-session-out, 5 folds), otherwise by
  ``speaker`` (CASIA, whose session is its speaker: leave-one-speaker-out, 4
  folds); ``group_by`` forces either. The number of folds is the number of
  groups, so ``n_folds`` is not used.

Corpora with different fold counts are combined run by run: run ``i`` tests
on fold ``i mod K_c`` of corpus ``c`` (``run_split``). The final run
(``"final"``, :data:`speechbrain_sercl.layout.FINAL_RUN`) trains on every
utterance and tests on none.

``load_or_create_folds`` writes ``folds_<protocol>.json`` next to the
manifest (protocol, seed, fold count, grouping, a hash of the sorted
utterance ids and emotions, the emotions, the assignment and the
preparation it was made from) and reuses it afterwards. If the file no
longer agrees with the manifest or the request, it raises
``FoldsMismatchError`` saying what differs; it never recomputes silently,
since results made with other folds are not comparable. The one exception
is new data: when the corpus was prepared again from a changed release
(another ``preparation``) and its utterances or labels changed, the old
file is kept as ``folds_<protocol>.<manifest hash>.json`` and new folds
are made, with a warning naming both files (the fold runner then refuses,
or retrains, every step made on the old data: see
:mod:`speechbrain_sercl.step_records`).

Example
-------
>>> manifest = {
...     f"u{i}": {
...         "emotion": "sad" if i % 2 else "happy",
...         "speaker": f"s{i % 3}",
...     }
...     for i in range(12)
... }
>>> folds = make_folds(manifest, "paper", n_folds=3, seed=0)
>>> n_folds_of(folds)
3
>>> train_ids, test_ids = run_split(folds, 4)
>>> sorted(folds[i] for i in test_ids) == [4 % 3] * 4
True
"""

import hashlib
import json
import logging
import os
import random

from speechbrain.utils.distributed import run_on_main

from speechbrain_sercl.atomic import writing_atomically
from speechbrain_sercl.data.pipeline import load_manifests
from speechbrain_sercl.layout import FOLD_SPLIT_FILE, check_run, is_final

__all__ = [
    "FoldSplit",
    "FoldsMismatchError",
    "PROTOCOLS",
    "folds_path",
    "load_or_create_folds",
    "make_folds",
    "n_folds_of",
    "read_folds",
    "run_split",
    "select_run",
    "write_folds",
]

logger = logging.getLogger(__name__)

PROTOCOLS = ("paper", "speaker")
GROUP_KEYS = ("session", "speaker")
SHOWN_IDS = 5


class FoldsMismatchError(ValueError):
    """A folds file on disk disagrees with its manifest or the request."""


def _check_protocol(protocol):
    if protocol not in PROTOCOLS:
        raise ValueError(
            f"protocol must be one of {PROTOCOLS}, got {protocol!r}"
        )


def _field(manifest, utt_id, key):
    """``manifest[utt_id][key]``, or a ValueError naming both."""
    try:
        return manifest[utt_id][key]
    except KeyError:
        raise ValueError(
            f"manifest entry {utt_id!r} has no {key!r} field"
        ) from None


def _ids_by(manifest, key, utt_ids=None):
    """``{value of key: sorted utterance ids}`` over ``utt_ids``."""
    groups = {}
    for utt_id in sorted(manifest if utt_ids is None else utt_ids):
        groups.setdefault(_field(manifest, utt_id, key), []).append(utt_id)
    return groups


def _ids_by_corpus(manifest):
    """``{corpus: sorted ids}``; entries without ``corpus`` form one."""
    groups = {}
    for utt_id in sorted(manifest):
        corpus = manifest[utt_id].get("corpus", "")
        groups.setdefault(corpus, []).append(utt_id)
    return groups


def _stratified_folds(manifest, n_folds, seed):
    """The ``paper`` protocol: seeded round-robin deal of each class."""
    if not isinstance(n_folds, int) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    rng = random.Random(seed)
    dealer = rng.randrange(n_folds)
    folds = {}
    for corpus, utt_ids in sorted(_ids_by_corpus(manifest).items()):
        if len(utt_ids) < n_folds:
            raise ValueError(
                f"corpus {corpus!r} has {len(utt_ids)} utterances, fewer "
                f"than n_folds={n_folds}: some folds would be empty"
            )
        classes = _ids_by(manifest, "emotion", utt_ids)
        for emotion in sorted(classes):
            rng.shuffle(classes[emotion])
            for utt_id in classes[emotion]:
                folds[utt_id] = dealer
                dealer = (dealer + 1) % n_folds
    return folds


def _group_key(manifest, utt_ids, group_by):
    """``session`` or ``speaker``: forced, or by the rule in the docstring."""
    if group_by is not None:
        if group_by not in GROUP_KEYS:
            raise ValueError(
                f"group_by must be one of {GROUP_KEYS} or None, got "
                f"{group_by!r}"
            )
        return group_by
    speakers = {}
    for utt_id in utt_ids:
        session = manifest[utt_id].get("session")
        if session is None:
            return "speaker"
        speaker = _field(manifest, utt_id, "speaker")
        speakers.setdefault(session, set()).add(speaker)
    if all(len(names) > 1 for names in speakers.values()):
        return "session"
    return "speaker"


def _group_keys(manifest, group_by=None):
    """``{corpus: grouping key}`` of the ``speaker`` protocol."""
    return {
        corpus: _group_key(manifest, utt_ids, group_by)
        for corpus, utt_ids in _ids_by_corpus(manifest).items()
    }


def _speaker_folds(manifest, group_by):
    """The ``speaker`` protocol: fold = rank of the group's name."""
    folds, counts = {}, {}
    keys = _group_keys(manifest, group_by)
    for corpus, utt_ids in sorted(_ids_by_corpus(manifest).items()):
        groups = _ids_by(manifest, keys[corpus], utt_ids)
        if len(groups) < 2:
            raise ValueError(
                f"corpus {corpus!r} has a single {keys[corpus]} "
                f"({next(iter(groups))!r}): speaker folds need two or more"
            )
        counts[corpus] = len(groups)
        for fold, name in enumerate(sorted(groups, key=str)):
            folds.update(dict.fromkeys(groups[name], fold))
    if len(set(counts.values())) > 1:
        raise ValueError(
            f"the corpora of this manifest have different numbers of speaker "
            f"groups {counts}: make folds per corpus (one manifest each) and "
            "combine runs with run_split"
        )
    return folds


def make_folds(manifest, protocol, n_folds=5, seed=1234, group_by=None):
    """Assign every utterance of a manifest to a fold.

    Arguments
    ---------
    manifest : dict
        ``{utt_id: {"emotion": ..., "speaker": ..., "session": ...,
        "corpus": ...}}`` (SpeechBrain JSON manifest).
    protocol : str
        ``"paper"`` (stratified random k-fold per corpus and emotion) or
        ``"speaker"`` (one fold per session or speaker group).
    n_folds : int
        Number of folds of the ``paper`` protocol (``speaker``: not used).
    seed : int
        Seed of the ``paper`` protocol (``speaker``: not used).
    group_by : str, optional
        ``speaker`` protocol: ``"session"`` or ``"speaker"``; by default
        ``session`` where every session holds more than one speaker.

    Returns
    -------
    dict
        ``{utt_id: fold index}``, sorted by utterance id.

    Example
    -------
    >>> manifest = {
    ...     f"Ses0{s}{g}_impro01_{g}00{i}": {
    ...         "emotion": "neutral", "speaker": f"Ses0{s}{g}",
    ...         "session": f"Session{s}", "corpus": "iemocap",
    ...     }
    ...     for s in (1, 2, 3) for g in "FM" for i in range(2)
    ... }  # fmt: skip
    >>> folds = make_folds(manifest, "speaker")
    >>> folds["Ses03F_impro01_F001"], n_folds_of(folds)
    (2, 3)
    """
    _check_protocol(protocol)
    if protocol == "paper":
        folds = _stratified_folds(manifest, n_folds, seed)
    else:
        folds = _speaker_folds(manifest, group_by)
    return dict(sorted(folds.items()))


def n_folds_of(folds):
    """Number of folds of an assignment (its indices must be 0..K-1).

    Arguments
    ---------
    folds : dict
        ``{utt_id: fold index}``.

    Returns
    -------
    int
        ``K``.

    Example
    -------
    >>> n_folds_of({"a": 0, "b": 2, "c": 1, "d": 2})
    3
    """
    indices = set(folds.values())
    if not indices:
        raise ValueError("the fold assignment is empty")
    count = max(indices) + 1
    if indices != set(range(count)):
        raise ValueError(
            f"fold indices must be 0..{count - 1} with none empty, got "
            f"{sorted(indices)}"
        )
    return count


def run_split(folds, run_index):
    """Training and test utterances of run ``run_index``.

    The test part is fold ``run_index mod K``, so corpora with different
    fold counts can share run indices (run i uses fold i mod K_c of corpus
    c). The final run trains on every utterance and tests on none.

    Arguments
    ---------
    folds : dict
        ``{utt_id: fold index}`` of one corpus (every utterance of it).
    run_index : int or str
        The run (0, 1, ...), or ``"final"``.

    Returns
    -------
    train_ids : list of str
        Sorted ids outside the test fold (final run: every id).
    test_ids : list of str
        Sorted ids of the test fold (final run: none).

    Example
    -------
    >>> run_split({"a": 0, "b": 1, "c": 2, "d": 0}, 3)
    (['b', 'c'], ['a', 'd'])
    >>> run_split({"a": 0, "b": 1, "c": 2, "d": 0}, "final")
    (['a', 'b', 'c', 'd'], [])
    """
    check_run(run_index)
    if is_final(run_index):
        n_folds_of(folds)  # the same checks as for a fold
        return sorted(folds), []
    test_fold = run_index % n_folds_of(folds)
    train_ids = sorted(u for u, fold in folds.items() if fold != test_fold)
    test_ids = sorted(u for u, fold in folds.items() if fold == test_fold)
    return train_ids, test_ids


def folds_path(manifest_path, protocol):
    """Where the folds of a manifest are stored: ``folds_<protocol>.json``.

    Arguments
    ---------
    manifest_path : str
        The manifest file.
    protocol : str
        ``"paper"`` or ``"speaker"``.

    Returns
    -------
    str
        The folds file next to the manifest.

    Example
    -------
    >>> folds_path("prepared/casia/manifest.json", "speaker")
    'prepared/casia/folds_speaker.json'
    """
    _check_protocol(protocol)
    folder = os.path.dirname(manifest_path)
    return os.path.join(folder, f"folds_{protocol}.json")


def _manifest_hash(manifest):
    """SHA-256 of the sorted ``(utt_id, emotion)`` pairs."""
    pairs = sorted(
        (utt_id, _field(manifest, utt_id, "emotion")) for utt_id in manifest
    )
    text = json.dumps(pairs, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_folds(
    path,
    folds,
    protocol,
    n_folds,
    seed,
    manifest,
    group_by=None,
    preparation=None,
):
    """Write a fold assignment with what it was made from (atomically).

    Arguments
    ---------
    path : str
        The folds file to write (``folds_path`` gives the usual place).
    folds : dict
        ``{utt_id: fold index}`` of every utterance of ``manifest``.
    protocol : str
        ``"paper"`` or ``"speaker"``.
    n_folds : int
        Requested number of folds (``paper``; checked against ``folds``).
    seed : int
        Seed the folds were made with.
    manifest : dict
        The manifest the folds were made from.
    group_by : str, optional
        ``speaker`` protocol: the grouping forced when making the folds.
    preparation : str, optional
        What identifies the preparation of the manifest (the digest of its
        release files).

    Returns
    -------
    str
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> manifest = {"a": {"emotion": "sad"}, "b": {"emotion": "happy"}}
    >>> path = os.path.join(tmp.name, "folds_paper.json")
    >>> _ = write_folds(path, {"a": 0, "b": 1}, "paper", 2, 7, manifest)
    >>> with open(path) as handle:
    ...     json.load(handle)["assignment"]
    {'a': 0, 'b': 1}
    >>> tmp.cleanup()
    """
    _check_protocol(protocol)
    if set(folds) != set(manifest):
        raise ValueError(
            f"cannot write {path}: the folds do not cover exactly the "
            "utterances of the manifest"
        )
    count = n_folds_of(folds)
    if protocol == "paper" and count != n_folds:
        raise ValueError(
            f"cannot write {path}: n_folds={n_folds} but the assignment has "
            f"{count} folds"
        )
    record = {
        "protocol": protocol,
        "seed": seed,
        "n_folds": count,
        "group_by": None
        if protocol == "paper"
        else _group_keys(manifest, group_by),
        "manifest_hash": _manifest_hash(manifest),
        "preparation": preparation,
        "emotions": {u: manifest[u]["emotion"] for u in sorted(manifest)},
        "assignment": dict(sorted(folds.items())),
    }
    with writing_atomically(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1, ensure_ascii=False)
    return path


def _read_json(path, what):
    """Load a JSON file, with an error naming it if it is unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{what} {path} is not valid JSON: {error}") from None


def _preview(utt_ids):
    """``"3 (a, b, c)"`` with at most ``SHOWN_IDS`` ids."""
    ids = sorted(utt_ids)
    shown = ids[:SHOWN_IDS] + (["..."] if len(ids) > SHOWN_IDS else [])
    return f"{len(ids)} ({', '.join(shown)})"


def _request_problems(stored, protocol, n_folds, seed, group_by):
    """How the stored protocol/seed/n_folds/grouping differ from a request."""
    problems = []
    if stored.get("protocol") != protocol:
        problems.append(
            f"protocol is {stored.get('protocol')!r}, requested {protocol!r}"
        )
    elif protocol == "paper":
        for name, value in (("seed", seed), ("n_folds", n_folds)):
            if stored.get(name) != value:
                problems.append(
                    f"{name} is {stored.get(name)!r}, requested {value!r}"
                )
    elif group_by is not None:
        forced = set((stored.get("group_by") or {}).values())
        if forced != {group_by}:
            problems.append(
                f"grouped by {stored.get('group_by')}, requested {group_by!r}"
            )
    return problems


def _data_problems(stored, manifest):
    """The utterances added or removed, and the labels changed, since the
    folds were made."""
    emotions = stored.get("emotions", {})
    problems = []
    added = set(manifest) - set(emotions)
    removed = set(emotions) - set(manifest)
    changed = {
        u
        for u in set(manifest) & set(emotions)
        if manifest[u].get("emotion") != emotions[u]
    }
    if added:
        problems.append(f"ids added to the manifest: {_preview(added)}")
    if removed:
        problems.append(f"ids removed from the manifest: {_preview(removed)}")
    if changed:
        problems.append(f"labels changed: {_preview(changed)}")
    return problems


def _manifest_problems(stored, manifest):
    """How the manifest differs from the one the folds were made from."""
    emotions = stored.get("emotions", {})
    problems = _data_problems(stored, manifest)
    if set(stored.get("assignment", {})) != set(emotions):
        problems.append("the assignment does not cover the stored ids")
    if not problems and stored.get("manifest_hash") != _manifest_hash(manifest):
        problems.append("manifest_hash differs (the file was edited?)")
    return problems


def _group_problems(stored, manifest):
    """Sessions or speakers that the manifest now spreads over two folds."""
    problems = []
    keys = stored.get("group_by") or {}
    for corpus, utt_ids in _ids_by_corpus(manifest).items():
        key = keys.get(corpus, "speaker")
        for name, group_ids in _ids_by(manifest, key, utt_ids).items():
            folds = {stored["assignment"][u] for u in group_ids}
            if len(folds) > 1:
                problems.append(
                    f"{key} {name!r} of {corpus or 'the manifest'} is now "
                    f"spread over folds {sorted(folds)}"
                )
    return problems


def _check_stored(path, stored, manifest, request):
    """Raise ``FoldsMismatchError`` listing every disagreement."""
    problems = _request_problems(stored, *request)
    problems += _manifest_problems(stored, manifest)
    if not problems and stored["protocol"] == "speaker":
        problems += _group_problems(stored, manifest)
    if problems:
        raise FoldsMismatchError(
            f"{path} does not match its manifest or the request: "
            + "; ".join(problems)
            + f". The folds are never recomputed silently: delete {path} "
            "to make new ones (results made with the old folds are not "
            "comparable with the new ones)."
        )


def _set_aside(path, stored, problems):
    """Keep the folds of an earlier preparation under their manifest's hash
    (warned about) and return where."""
    stem, extension = os.path.splitext(path)
    kept = f"{stem}.{str(stored.get('manifest_hash'))[:12]}{extension}"
    os.replace(path, kept)
    logger.warning(
        "%s: the corpus was prepared again from a changed release (%s): the "
        "old folds are kept as %s and new folds are made",
        path,
        "; ".join(problems),
        kept,
    )
    return kept


def load_or_create_folds(
    manifest_path,
    protocol,
    n_folds=5,
    seed=1234,
    group_by=None,
    preparation=None,
):
    """Folds of a manifest: read from ``folds_<protocol>.json`` or made.

    An existing folds file is reused if it agrees with the manifest (same
    ids and emotions) and the request (protocol; ``paper``: seed and
    n_folds; ``speaker``: a forced ``group_by``, and no session or speaker
    now spread over two folds); otherwise ``FoldsMismatchError`` names the
    file and what differs. A file made from another ``preparation`` of the
    corpus whose ids or labels differ is set aside instead (see the module
    docstring). Without a file, the folds are made with ``make_folds`` and
    written with ``write_folds``.

    Arguments
    ---------
    manifest_path : str
        The SpeechBrain JSON manifest.
    protocol : str
        ``"paper"`` or ``"speaker"``.
    n_folds : int
        Number of folds of the ``paper`` protocol (``speaker``: not used).
    seed : int
        Seed of the ``paper`` protocol (``speaker``: not used).
    group_by : str, optional
        ``speaker`` protocol: force ``"session"`` or ``"speaker"``.
    preparation : str, optional
        What identifies this preparation of the manifest (the digest of its
        release files), recorded in the folds file.

    Returns
    -------
    dict
        ``{utt_id: fold index}``.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> manifest_path = os.path.join(tmp.name, "manifest.json")
    >>> manifest = {
    ...     f"casia_{s}_sad_{i}": {"emotion": "sad", "speaker": s, "session": s}
    ...     for s in ("liuchanhg", "wangzhe") for i in range(3)
    ... }  # fmt: skip
    >>> with open(manifest_path, "w") as handle:
    ...     json.dump(manifest, handle)
    >>> folds = load_or_create_folds(manifest_path, "speaker")
    >>> sorted(os.listdir(tmp.name))
    ['folds_speaker.json', 'manifest.json']
    >>> load_or_create_folds(manifest_path, "speaker") == folds
    True
    >>> tmp.cleanup()
    """
    manifest = _read_json(manifest_path, "manifest")
    path = folds_path(manifest_path, protocol)
    if os.path.exists(path):
        stored = _read_json(path, "folds file")
        new_data = _data_problems(stored, manifest)
        if new_data and stored.get("preparation") != preparation:
            _set_aside(path, stored, new_data)
        else:
            request = (protocol, n_folds, seed, group_by)
            _check_stored(path, stored, manifest, request)
            return {u: int(fold) for u, fold in stored["assignment"].items()}
    folds = make_folds(manifest, protocol, n_folds, seed, group_by)
    write_folds(
        path, folds, protocol, n_folds, seed, manifest, group_by, preparation
    )
    return folds


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


def read_folds(manifest_path, protocol):
    """The stored assignment of a manifest's folds file, as it is.

    For processes that only read what ``load_or_create_folds`` made or
    checked on the main process.

    Arguments
    ---------
    manifest_path : str
        The manifest.
    protocol : str
        ``paper`` or ``speaker``.

    Returns
    -------
    dict
        ``{utt_id: fold index}``.
    """
    stored = _read_json(folds_path(manifest_path, protocol), "folds file")
    return {u: int(fold) for u, fold in stored["assignment"].items()}


def select_run(prepared, fold, output_folder):
    """Select run ``fold`` of prepared corpora and write it down.

    Run ``i`` tests on fold ``i mod K_c`` of corpus ``c`` and trains on the
    rest of it; the final run trains on every utterance and tests on none.
    The split is written to ``<output_folder>/fold_split.json`` (main
    process), the final run's too.

    Arguments
    ---------
    prepared : dict
        corpus name -> (manifest path, ``{utt_id: fold}``).
    fold : int or str
        The run index, or ``"final"``.
    output_folder : str
        The run's output folder.

    Returns
    -------
    FoldSplit
        Manifest and ids of this run.
    """
    train_ids, test_ids = {}, {}
    for name, (_, folds) in prepared.items():
        train_ids[name], test_ids[name] = run_split(folds, fold)
    manifest = load_manifests([path for path, _ in prepared.values()])
    split = FoldSplit(manifest, train_ids, test_ids)
    path = os.path.join(output_folder, FOLD_SPLIT_FILE)
    run_on_main(split.write, args=[path])
    return split
