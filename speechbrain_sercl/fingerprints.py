"""What a step is made from, as values that can be compared, and how two
of them differ.

The fingerprint of a step (:func:`step_fingerprint`) holds:

- ``data``: per corpus it uses, the digest of the corpus's table
  (:func:`corpus_table`): every utterance with its fold, its speaker and
  the digest of its manifest entry (emotion, speaker, session, duration,
  corpus and the audio file's checksum; the entry's ``wav`` path is left
  out when a checksum stands for its content, so moving a release changes
  nothing). With the run index, the table fixes the step's training and
  test utterances and what they hold.
- ``settings``: the step's YAML resolved with its overrides
  (:func:`settings_of`), where things are (:func:`is_location`: every
  ``*_folder``, ``data_folder_*`` and ``train_log``) and what the data
  part already holds (``fold``, ``corpus``, ``reader``,
  ``reader_options``, ``corpora``) replaced by their names before
  resolving (:func:`placeholders`) so that no path, run or corpus leaks
  into the values that use them, less the other methods'
  ``method_overrides``; plus the SpeechBrain run options that can change
  results (all but :data:`NEUTRAL_RUN_OPTIONS`: the device, progress bars,
  checkpoint intervals, profiling, ...). The fold runner adds
  ``speech_model`` where ``ssl_source`` does not name the weights alone:
  a pretrained tiny model's version, a local folder's digest. So a
  method's settings are the same for all its runs and corpora.
- ``after``: the steps it starts from (stage 2: its run's stage 1; a
  cross-corpus test: the tested step), by their ``trained_as`` digest.

``trained_as`` (:func:`digests`) is the digest of all that but the run
index: the same for every run of a method and corpus made the same way,
and for the final run's step.

Code is not fingerprinted: a new version of this package that trains
differently is not noticed.

Example
-------
>>> tables = {"c": {"u1": [0, "s1", "a"], "u2": [1, "s2", "b"]}}
>>> data = {"c": digest(tables["c"])}
>>> before = step_fingerprint("finetune", 0, {"lr": 0.001}, data)
>>> now = step_fingerprint("finetune", 0, {"lr": 0.002}, data)
>>> describe_change(before, tables, now, tables)
'settings: lr 0.001 -> 0.002'
"""

import hashlib
import json
from collections import Counter

from ruamel.yaml.comments import TaggedScalar

from speechbrain_sercl._moved import spelled_as_in_0_1

__all__ = [
    "DATA_KEYS",
    "NEUTRAL_RUN_OPTIONS",
    "corpus_table",
    "describe_change",
    "digest",
    "digests",
    "entry_digest",
    "is_location",
    "placeholders",
    "settings_of",
    "step_fingerprint",
]

# Keys a step's data fingerprint holds already (its run, its corpora and
# what they contain).
DATA_KEYS = ("run", "fold", "corpus", "reader", "reader_options", "corpora")
# The run key is recorded under its name of version 0.1, and tags with the
# module paths of 0.1 (spelled_as_in_0_1), so that the records written
# before the renames still match.
_RECORDED_NAMES = {"run": "fold"}
OTHER_STEPS_KEYS = ("method_overrides",)
# SpeechBrain run options that do not change what a step computes.
NEUTRAL_RUN_OPTIONS = (
    "device",
    "distributed_backend",
    "distributed_launch",
    "find_unused_parameters",
    "noprogressbar",
    "ckpt_interval_minutes",
    "ckpt_interval_steps",
    "tqdm_colored_bar",
    "tqdm_barcolor",
    "profile_training",
    "profile_warmup",
    "profile_steps",
    "log_config",
)
SHOWN = 3  # changed utterances, speakers or settings named in a message
_PLACEHOLDER = "$"  # not "<...>": hyperpyyaml would take it for a reference


def digest(value):
    """SHA-256 of a JSON value written canonically (sorted keys, no spaces).

    Arguments
    ---------
    value : object
        Anything ``json.dumps`` accepts.

    Returns
    -------
    str
        64 hex digits.

    Example
    -------
    >>> digest({"b": 1, "a": [2]}) == digest({"a": [2], "b": 1})
    True
    """
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_digest(entry):
    """The digest of a manifest entry (16 hex digits).

    The ``wav`` path counts only when the entry has no ``checksum`` of the
    file's content (a manifest of an older version).

    Arguments
    ---------
    entry : dict
        A manifest entry.

    Returns
    -------
    str

    Example
    -------
    >>> entry = {"wav": "/a/u.wav", "emotion": "sad", "checksum": "sha256:0"}
    >>> entry_digest(entry) == entry_digest({**entry, "wav": "/b/u.wav"})
    True
    >>> entry_digest(entry) == entry_digest({**entry, "checksum": "sha256:1"})
    False
    """
    if "checksum" in entry:
        entry = {key: value for key, value in entry.items() if key != "wav"}
    return digest(entry)[:16]


def corpus_table(manifest, folds):
    """Every utterance of a corpus with its fold, speaker and entry digest.

    Arguments
    ---------
    manifest : dict
        utterance id -> manifest entry (at least the corpus's).
    folds : dict
        utterance id -> fold index, for every utterance of the corpus.

    Returns
    -------
    dict
        ``{utt_id: [fold, speaker, entry digest]}``, sorted by id.

    Example
    -------
    >>> manifest = {"u1": {"speaker": "s1", "emotion": "sad"}}
    >>> corpus_table(manifest, {"u1": 3})["u1"][:2]
    [3, 's1']
    """
    return {
        utt: [folds[utt], manifest[utt]["speaker"], entry_digest(manifest[utt])]
        for utt in sorted(folds)
    }


def is_location(key):
    """Whether a YAML key says where something is, not what is computed.

    Arguments
    ---------
    key : str
        A top-level YAML key.

    Returns
    -------
    bool
        True for ``*_folder``, ``data_folder_*`` and ``train_log``.

    Example
    -------
    >>> [is_location(k) for k in ("save_folder", "data_folder_casia", "lr")]
    [True, True, False]
    """
    return (
        key.endswith("_folder")
        or key.startswith("data_folder")
        or key == "train_log"
    )


def placeholders(keys):
    """Overrides that replace every location and :data:`DATA_KEYS` key
    among ``keys`` by its name, before a YAML is resolved.

    Arguments
    ---------
    keys : iterable of str
        The keys a YAML declares.

    Returns
    -------
    dict
        key -> ``"$<key>"``.

    Example
    -------
    >>> placeholders(["lr", "corpus", "output_folder"])
    {'corpus': '$corpus', 'output_folder': '$output_folder'}
    """
    return {
        key: _PLACEHOLDER + _RECORDED_NAMES.get(key, key)
        for key in sorted(keys)
        if key in DATA_KEYS or is_location(key)
    }


def _plain(node):
    """A resolved YAML node as plain JSON values; a tagged node becomes
    ``{tag: value}``."""
    if isinstance(node, dict):
        value = {str(key): _plain(item) for key, item in node.items()}
    elif isinstance(node, list):
        value = [_plain(item) for item in node]
    elif isinstance(node, TaggedScalar):
        value = node.value
    elif isinstance(node, bool) or node is None:
        value = node
    elif isinstance(node, int):  # ruamel's ScalarInt and ScalarBoolean too
        value = int(node)
    elif isinstance(node, float):
        value = float(node)
    else:
        value = str(node)
    tag = getattr(getattr(node, "tag", None), "value", None)
    return {spelled_as_in_0_1(tag): value} if tag else value


def settings_of(config, run_options=()):
    """The settings of a step that can change its results.

    Arguments
    ---------
    config : dict
        The step's YAML resolved with its overrides and
        :func:`placeholders` (tags left unevaluated, as
        :func:`speechbrain_sercl.protocol.runner.read_config` returns it).
    run_options : iterable of str
        The step's SpeechBrain run options (``--precision=bf16``, ...).

    Returns
    -------
    dict
        key -> plain value (but the other steps' ``method_overrides``),
        and ``run_options``: the sorted options other than
        :data:`NEUTRAL_RUN_OPTIONS`.

    Example
    -------
    >>> settings_of(
    ...     {"lr": 0.1, "method_overrides": {"finetune": {"lr": 0.2}}},
    ...     ["--device=cuda:0", "--precision=bf16"],
    ... )
    {'lr': 0.1, 'run_options': ['--precision=bf16']}
    """
    settings = {
        _RECORDED_NAMES.get(str(key), str(key)): _plain(value)
        for key, value in config.items()
        if key not in OTHER_STEPS_KEYS
    }
    settings["run_options"] = sorted(
        option
        for option in run_options
        if option[2:].partition("=")[0] not in NEUTRAL_RUN_OPTIONS
    )
    return settings


def step_fingerprint(step, run, settings, data, after=None):
    """The fingerprint of one step.

    Arguments
    ---------
    step : str
        What the step is (``contrastive``, ``classifier``, ``finetune``,
        ``classical``, ``cross_corpus``).
    run : int or str
        The run index, or ``"final"``.
    settings : dict
        From :func:`settings_of` (or the few values of an in-process step).
    data : dict
        corpus -> digest of its :func:`corpus_table`, for the corpora it
        uses.
    after : dict, optional
        name -> ``trained_as`` digest of each step it starts from.

    Returns
    -------
    dict
        ``{"step", "run", "settings", "data": {corpus: digest}, "after"}``.

    Example
    -------
    >>> step_fingerprint("classical", 1, {"seed": 0}, {"c": "ab"})["data"]
    {'c': 'ab'}
    """
    return {
        "step": step,
        "run": run,
        "settings": settings,
        "data": dict(data),
        "after": dict(after or {}),
    }


def digests(fingerprint):
    """The two digests of a fingerprint: ``digest`` (the exact step) and
    ``trained_as`` (the same but for the run index).

    Arguments
    ---------
    fingerprint : dict
        From :func:`step_fingerprint`.

    Returns
    -------
    dict
        ``{"digest": ..., "trained_as": ...}``.

    Example
    -------
    >>> first = digests(step_fingerprint("finetune", 0, {}, {}))
    >>> second = digests(step_fingerprint("finetune", 1, {}, {}))
    >>> first["trained_as"] == second["trained_as"], first == second
    (True, False)
    """
    without_run = {k: v for k, v in fingerprint.items() if k != "run"}
    return {"digest": digest(fingerprint), "trained_as": digest(without_run)}


def describe_change(recorded, recorded_tables, current, current_tables):
    """What differs between two fingerprints of a step, in one line.

    Arguments
    ---------
    recorded, current : dict
        Fingerprints (:func:`step_fingerprint`): what the step was made
        from, and what it would be made from now.
    recorded_tables, current_tables : dict
        Their corpus tables (:func:`corpus_table`).

    Returns
    -------
    str
        E.g. ``"iemocap manifest: 12 utterances removed (speaker Ses01F)"``
        or ``"settings: lr 0.001 -> 0.002"``; parts joined by ``"; "``.

    Example
    -------
    >>> old = {"u1": [0, "s1", "a"], "u2": [1, "s2", "b"], "u3": [0, "s2", "c"]}
    >>> new = {"u1": [0, "s1", "a"], "u3": [1, "s2", "c"]}
    >>> describe_change(
    ...     step_fingerprint("finetune", 0, {}, {"c": digest(old)}), {"c": old},
    ...     step_fingerprint("finetune", 0, {}, {"c": digest(new)}), {"c": new},
    ... )  # fmt: skip
    'c manifest: 1 utterance removed (speaker s2); test ids changed'
    """
    changes = []
    if recorded.get("step") != current["step"]:
        changes.append(f"step {recorded.get('step')} -> {current['step']}")
    corpora = sorted(set(recorded.get("data", {})) | set(current["data"]))
    for corpus in corpora:
        changes += _data_change(
            corpus,
            recorded_tables.get(corpus),
            current_tables.get(corpus),
            current["run"],
        )
    changes += _settings_change(recorded.get("settings", {}), current)
    for name in sorted(set(recorded.get("after", {})) | set(current["after"])):
        if recorded.get("after", {}).get(name) != current["after"].get(name):
            changes.append(f"the step it starts from, {name}, changed")
    return "; ".join(changes) or "its record was edited"


def _data_change(corpus, before, after, run):
    """How one corpus's table changed, or [] when it did not."""
    if before == after:
        return []
    if before is None or after is None:
        return [f"corpus {corpus} {'added' if before is None else 'removed'}"]
    parts = []
    removed = sorted(set(before) - set(after))
    added = sorted(set(after) - set(before))
    changed = sorted(
        utt
        for utt in set(before) & set(after)
        if before[utt][1:] != after[utt][1:]
    )
    if removed:
        parts.append(_utterances(removed, before, "removed"))
    if added:
        parts.append(_utterances(added, after, "added"))
    if changed:
        shown = ", ".join(changed[:SHOWN]) + (
            ", ..." if len(changed) > SHOWN else ""
        )
        parts.append(f"{_count(changed)} changed ({shown})")
    changes = [f"{corpus} manifest: {', '.join(parts)}"] if parts else []
    kept = set(before) & set(after)
    if _test_ids(before, run) & kept != _test_ids(after, run) & kept:
        changes.append("test ids changed")
    return changes


def _test_ids(table, run):
    """The test ids of run ``run`` in a corpus table (none for the final
    run)."""
    if not isinstance(run, int) or not table:
        return set()
    test_fold = run % (max(row[0] for row in table.values()) + 1)
    return {utt for utt, row in table.items() if row[0] == test_fold}


def _count(utterances):
    return f"{len(utterances)} utterance{'' if len(utterances) == 1 else 's'}"


def _utterances(utterances, table, what):
    """``"12 utterances removed (speaker Ses01F)"``."""
    speakers = Counter(table[utt][1] for utt in utterances)
    names = [name for name, _ in speakers.most_common()]
    shown = ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")
    label = "speaker" if len(names) == 1 else "speakers"
    return f"{_count(utterances)} {what} ({label} {shown})"


def _settings_change(before, current):
    """``["settings: lr 0.001 -> 0.002, ..."]``, or []."""
    after = current["settings"]
    changed = sorted(
        (
            key
            for key in set(before) | set(after)
            if before.get(key, _MISSING) != after.get(key, _MISSING)
        ),
        key=lambda key: (not _shown(before, after, key), key),
    )
    if not changed:
        return []
    shown = [_setting(key, before, after) for key in changed[:SHOWN]]
    more = f" (+{len(changed) - SHOWN} more)" if len(changed) > SHOWN else ""
    return [f"settings: {', '.join(shown)}{more}"]


_MISSING = object()
_SHORT = 40  # longest setting value written out in a message


def _shown(before, after, key):
    """Whether a changed setting is short enough to write out (such
    settings come first)."""
    return all(
        len(json.dumps(side.get(key))) <= _SHORT for side in (before, after)
    )


def _setting(key, before, after):
    """``"lr 0.001 -> 0.002"``, ``"x added"``, ``"x removed"`` or
    ``"ssl changed"`` (a long value)."""
    if key not in before:
        return f"{key} added"
    if key not in after:
        return f"{key} removed"
    if not _shown(before, after, key):
        return f"{key} changed"
    return f"{key} {json.dumps(before[key])} -> {json.dumps(after[key])}"
