"""Step records: what a step was made from and what it wrote, checked
before a finished step is reused and before its results are reported.

The fold runner keeps ``step_record.json`` in every step folder (stage 1,
stage 2, FT, the classical floor, each cross-corpus test, the final
run's):

- when the step starts, its fingerprint
  (:mod:`speechbrain_sercl.fingerprints`: data, settings, the steps it
  starts from), the fingerprint's digests and the corpus tables (to say
  later what changed);
- when it has finished, the size and SHA-256 of each file its done marker
  stands for (stage 1: ``encoder/ssl.ckpt`` and ``encoder/pooling.ckpt``;
  a test step: ``test_metrics.json`` and ``predictions.csv``; a final-run
  step: ``trained.json``; a cross-corpus test: ``predictions.csv``).

Before a step runs, :func:`step_state` compares its record with what the
step would be made from now, and :func:`claim_step` acts on it:

- ``done`` (same fingerprint, every output as written): skipped;
- ``changed`` (another fingerprint) or ``unrecorded`` (files but no record:
  an older version, or a step run by hand): the run stops with one line
  naming the folder and what changed (:class:`StepChanged`), unless it was
  started with ``--retrain-changed``; then the folder is moved to
  :func:`speechbrain_sercl.layout.replaced_folder`, the step is trained
  anew, and the old folder is deleted once the new one has finished;
- ``damaged`` (an output missing, truncated or modified): said in one line
  naming the file, and the step runs again (recipes resume from their
  checkpoints and rewrite it);
- ``unfinished`` or ``new``: the step runs.

The runner also writes, in the protocol folder, ``step_fingerprints.json``:
the digest each step of the protocol's runs would have now (from the
prepared data and the settings of the last ``sercl folds`` on it).
:func:`checked_steps` keeps for the results only the finished steps whose
record matches it and whose outputs are as written, and names the others.

Example
-------
>>> from speechbrain_sercl.fingerprints import step_fingerprint
>>> folder = getfixture("tmp_path") / "step"
>>> expected = expected_record(step_fingerprint("finetune", 0, {}, {}), {})
>>> step_state(folder, expected).kind
'new'
>>> start_step(folder, expected)
>>> _ = (folder / "out.txt").write_text("done")
>>> finish_step(folder, expected, ["out.txt"])
>>> step_state(folder, expected).kind
'done'
>>> _ = (folder / "out.txt").write_text("do")
>>> print(step_state(folder, expected).message)
/.../step/out.txt is not the file the step wrote (2 bytes, 4 recorded)
"""

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field

from speechbrain_sercl import layout
from speechbrain_sercl.atomic import writing_atomically
from speechbrain_sercl.fingerprints import describe_change, digests

__all__ = [
    "RETRAIN_OPTION",
    "StepChanged",
    "StepCheck",
    "StepState",
    "checked_steps",
    "claim_step",
    "expected_record",
    "finish_step",
    "read_record",
    "start_step",
    "step_state",
    "write_step_fingerprints",
]

RETRAIN_OPTION = "--retrain-changed"
RECORD_FORMAT = 1


class StepChanged(RuntimeError):
    """A step made from other data or settings than now (or with no record);
    the message names its folder and what changed."""


@dataclass(frozen=True)
class StepState:
    """Where a step stands.

    Arguments
    ---------
    kind : str
        ``new``, ``unfinished``, ``done``, ``damaged``, ``changed`` or
        ``unrecorded``.
    message : str
        What is wrong (``damaged``, ``changed``, ``unrecorded``), else "".
    """

    kind: str
    message: str = ""


@dataclass
class StepCheck:
    """The result steps of a protocol folder, sorted for reporting.

    Arguments
    ---------
    accepted : dict
        step folder -> its ``trained_as`` digest: the steps to report.
    excluded : dict
        step folder -> why it is left out.
    """

    accepted: dict = field(default_factory=dict)
    excluded: dict = field(default_factory=dict)


def expected_record(fingerprint, tables):
    """The record a step starts with.

    Arguments
    ---------
    fingerprint : dict
        From :func:`speechbrain_sercl.fingerprints.step_fingerprint`.
    tables : dict
        corpus -> corpus table, for the corpora of the fingerprint.

    Returns
    -------
    dict
        ``{"format", "fingerprint", "digest", "trained_as", "tables",
        "outputs": None}``.

    Example
    -------
    >>> from speechbrain_sercl.fingerprints import step_fingerprint
    >>> record = expected_record(step_fingerprint("classical", 0, {}, {}), {})
    >>> sorted(record)
    ['digest', 'fingerprint', 'format', 'outputs', 'tables', 'trained_as']
    """
    return {
        "format": RECORD_FORMAT,
        "fingerprint": fingerprint,
        **digests(fingerprint),
        "tables": tables,
        "outputs": None,
    }


def read_record(folder):
    """The record of a step folder.

    Arguments
    ---------
    folder : str or os.PathLike
        A step folder.

    Returns
    -------
    dict or None
        The record; None when there is none.

    Raises
    ------
    ValueError
        When it cannot be read (one line naming it).

    Example
    -------
    >>> read_record(getfixture("tmp_path")) is None
    True
    """
    path = layout.step_file(folder, layout.STEP_RECORD_FILE)
    try:
        with open(path, encoding="utf-8") as stream:
            record = json.load(stream)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} cannot be read: {error}") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise ValueError(f"{path} is not a step record of this version")
    return record


def _write_record(folder, record):
    os.makedirs(folder, exist_ok=True)
    path = layout.step_file(folder, layout.STEP_RECORD_FILE)
    with writing_atomically(path) as tmp_path:
        with open(tmp_path, "w", encoding="utf-8") as stream:
            json.dump(record, stream, separators=(",", ":"))


def _file_facts(path):
    """``{"bytes", "sha256"}`` of a file."""
    with open(path, "rb") as stream:
        sha256 = hashlib.file_digest(stream, "sha256").hexdigest()
    return {"bytes": os.path.getsize(path), "sha256": sha256}


def _damage(folder, outputs):
    """Why a finished step's outputs are not what it wrote, or ""."""
    for name, recorded in outputs.items():
        path = layout.step_file(folder, name)
        if not os.path.isfile(path):
            return f"{path} is missing"
        facts = _file_facts(path)
        if facts["bytes"] != recorded["bytes"]:
            return (
                f"{path} is not the file the step wrote ({facts['bytes']} "
                f"bytes, {recorded['bytes']} recorded)"
            )
        if facts["sha256"] != recorded["sha256"]:
            return (
                f"{path} is not the file the step wrote (same size, other "
                "content)"
            )
    return ""


def _holds_files(folder):
    return os.path.isdir(folder) and any(os.scandir(folder))


def step_state(folder, expected):
    """Where a step stands (see the module docstring).

    Arguments
    ---------
    folder : str or os.PathLike
        The step folder.
    expected : dict
        The record it would start with now (:func:`expected_record`).

    Returns
    -------
    StepState
    """
    folder = os.fspath(folder)
    try:
        record = read_record(folder)
    except ValueError as error:
        return StepState("unrecorded", str(error))
    if record is None:
        if _holds_files(folder):
            return StepState(
                "unrecorded",
                f"{folder}: has no {layout.STEP_RECORD_FILE} (made by an "
                "older version of sercl, or run by hand), so what it was "
                "made from cannot be checked",
            )
        return StepState("new")
    if record.get("digest") != expected["digest"]:
        change = describe_change(
            record.get("fingerprint", {}),
            record.get("tables", {}),
            expected["fingerprint"],
            expected["tables"],
        )
        return StepState(
            "changed",
            f"{folder}: made from other data or settings than now: {change}",
        )
    recorded = record.get("outputs")
    if recorded is None:
        return StepState("unfinished")
    damage = _damage(folder, recorded)
    if damage:
        return StepState("damaged", damage)
    return StepState("done")


def start_step(folder, expected):
    """Record what a step is made from, before it runs.

    Arguments
    ---------
    folder : str or os.PathLike
        The step folder (created if needed).
    expected : dict
        From :func:`expected_record`.
    """
    _write_record(folder, {**expected, "outputs": None})


def finish_step(folder, expected, outputs, protocol_folder=None):
    """Record what a step wrote, once it has finished, and delete the old
    folder it replaced (if any).

    Arguments
    ---------
    folder : str or os.PathLike
        The step folder.
    expected : dict
        From :func:`expected_record`.
    outputs : list of str
        The files its done marker stands for (relative to ``folder``).
    protocol_folder : str, optional
        The protocol folder, whose ``replaced/`` copy of the step goes.
    """
    facts = {
        name: _file_facts(layout.step_file(folder, name)) for name in outputs
    }
    _write_record(folder, {**expected, "outputs": facts})
    if protocol_folder is not None:
        old = layout.replaced_folder(protocol_folder, os.fspath(folder))
        if os.path.isdir(old):
            shutil.rmtree(old)
            try:  # and the folders left empty above it, up to replaced/
                os.removedirs(os.path.dirname(old))
            except OSError:
                pass


def _set_aside(folder, protocol_folder):
    """Move a step folder to its ``replaced/`` place (replacing an older
    copy there) and return where."""
    old = layout.replaced_folder(protocol_folder, folder)
    if os.path.isdir(old):
        shutil.rmtree(old)
    os.makedirs(os.path.dirname(old), exist_ok=True)
    os.replace(folder, old)
    return old


def claim_step(
    folder,
    expected,
    outputs,
    protocol_folder,
    retrain_changed=False,
    resumable=True,
):
    """Decide whether a step runs, and make its folder ready if so.

    Arguments
    ---------
    folder : str
        The step folder.
    expected : dict
        The record it would start with now (:func:`expected_record`).
    outputs : list of str
        The files its done marker stands for.
    protocol_folder : str
        The protocol folder (for ``replaced/``).
    retrain_changed : bool
        Train a changed or unrecorded step anew instead of stopping.
    resumable : bool
        Whether the step resumes from what its folder holds (the recipes'
        checkpoints); a step that does not (a cross-corpus test) starts
        from an empty folder whenever it runs.

    Returns
    -------
    bool
        True when the step must run (its record then says it started),
        False when it is done.

    Raises
    ------
    StepChanged
        For a changed or unrecorded step without ``retrain_changed``.
    """
    state = step_state(folder, expected)
    if state.kind == "done":
        done = layout.step_file(folder, outputs[0])
        print(f"[sercl] done already ({done}), skipping", flush=True)
        return False
    if state.kind in ("changed", "unrecorded"):
        if not retrain_changed:
            raise StepChanged(
                f"{state.message}. Rerun with {RETRAIN_OPTION} to train it "
                "again (its old folder is deleted once the new one is done)"
            )
        old = _set_aside(folder, protocol_folder)
        print(f"[sercl] {state.message}: training it again ({old})")
    elif state.kind == "damaged":
        print(f"[sercl] not done: {state.message}: running the step again")
    if not resumable and state.kind in ("unfinished", "damaged"):
        _set_aside(folder, protocol_folder)
    start_step(folder, expected)
    return True


def write_step_fingerprints(protocol_folder, expected):
    """Write the digest each step of the protocol would have now.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.
    expected : dict
        step folder -> :func:`expected_record`.
    """
    steps = {
        os.path.relpath(folder, protocol_folder): record["digest"]
        for folder, record in expected.items()
    }
    os.makedirs(protocol_folder, exist_ok=True)
    path = os.path.join(protocol_folder, layout.STEP_FINGERPRINTS_FILE)
    with writing_atomically(path) as tmp_path:
        with open(tmp_path, "w", encoding="utf-8") as stream:
            json.dump(
                {"format": RECORD_FORMAT, "steps": steps},
                stream,
                indent=1,
                sort_keys=True,
            )


def _result_steps(protocol_folder):
    """The step folders of a protocol that hold test results."""
    runs = [
        os.path.join(protocol_folder, name)
        for name in layout.subfolders(protocol_folder)
        if layout.run_of_folder(name) is not None
    ]
    experiment, protocol = os.path.split(protocol_folder)
    cross = layout.cross_corpus_folder(experiment, protocol)
    runs += [
        os.path.join(cross, name, source)
        for name in layout.subfolders(cross)
        if layout.run_of_folder(name) is not None
        for source in layout.subfolders(os.path.join(cross, name))
    ]
    found = []
    for run in runs:
        for corpus in layout.subfolders(run):
            for method in layout.subfolders(os.path.join(run, corpus)):
                step = os.path.join(run, corpus, method)
                if any(
                    os.path.exists(layout.step_file(step, name))
                    for name in (
                        layout.PREDICTIONS_FILE,
                        layout.TEST_REPORT_FILE,
                    )
                ):
                    found.append(step)
    return found


def checked_steps(protocol_folder):
    """The steps of a protocol folder whose results may be reported.

    A step is reported when its record matches the digest that
    ``step_fingerprints.json`` gives it and its outputs are as it wrote
    them; every other step holding results is left out, with the reason.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.

    Returns
    -------
    StepCheck

    Raises
    ------
    FileNotFoundError
        When results exist but ``step_fingerprints.json`` does not (the
        steps of an older version): one line saying how to proceed.
    """
    protocol_folder = os.path.normpath(os.fspath(protocol_folder))
    steps = _result_steps(protocol_folder)
    path = os.path.join(protocol_folder, layout.STEP_FINGERPRINTS_FILE)
    try:
        with open(path, encoding="utf-8") as stream:
            expected = json.load(stream)["steps"]
    except FileNotFoundError:
        if not steps:
            return StepCheck()
        raise FileNotFoundError(
            f"{path} is missing: the steps of {protocol_folder} were made "
            "by an older version of sercl (or by hand) and cannot be "
            "checked; rerun `sercl folds` with this experiment's settings "
            f"and {RETRAIN_OPTION}"
        ) from None
    check = StepCheck()
    for step in steps:
        reason = _why_left_out(step, expected, protocol_folder)
        if reason:
            check.excluded[step] = reason
        else:
            check.accepted[step] = read_record(step)["trained_as"]
    return check


def _why_left_out(step, expected, protocol_folder):
    """Why a step's results are not reported, or ""."""
    digest = expected.get(os.path.relpath(step, protocol_folder))
    if digest is None:
        return "not a step of the last `sercl folds` on this folder"
    try:
        record = read_record(step)
    except ValueError as error:
        return str(error)
    if record is None:
        return f"has no {layout.STEP_RECORD_FILE}"
    if record.get("digest") != digest:
        return (
            "made from other data or settings than the last `sercl folds` "
            f"on this folder (rerun it with {RETRAIN_OPTION})"
        )
    if record.get("outputs") is None:
        return "unfinished"
    return _damage(step, record["outputs"])
