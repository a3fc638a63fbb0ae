"""Checkpoints that a kill during saving cannot leave half-written, and
that are checked before they are loaded.

SpeechBrain's ``Checkpointer`` writes a checkpoint's meta file first and its
parameter files after, so a process killed while saving leaves a folder that
looks like a checkpoint but misses files (or holds truncated ones), and the
next run fails to load it. :class:`AtomicCheckpointer` marks a checkpoint
complete only after its last file is written, ignores folders without the
mark, and removes them (with a warning) before recovering.

A file of a complete checkpoint can still be damaged later (a disk that
fills up, a copy cut short): loading it then fails with an error that
names neither the file nor the checkpoint, or loads wrong values. So the
mark records the SHA-256 of every file of the checkpoint, and a checkpoint
is checked against it before anything is loaded from it: a damaged file
is found without side effects (a load that fails half-way would leave some
modules loaded and others not), whatever the file holds, for the cost of
reading it once more (about a second per GB). Recovering skips a damaged
checkpoint with a warning naming it and the file, and resumes from the
one before it (or from scratch if none is left); loading one directly
(:meth:`AtomicCheckpointer.load_checkpoint`,
:meth:`~AtomicCheckpointer.find_checkpoint`) raises
:class:`CheckpointError` naming both. Checkpoints written before the
mark held checksums (an empty mark) load as before, unchecked. Recipes use
:class:`AtomicCheckpointer` in place of SpeechBrain's class; everything
else is SpeechBrain's.

Authors
 * speechbrain-sercl developers
"""

import hashlib
import json
import logging
import pickle
import shutil

from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.distributed import run_on_main
from speechbrain.utils.logger import get_logger

from speechbrain_sercl.atomic import writing_atomically

__all__ = ["COMPLETE_MARK", "AtomicCheckpointer", "CheckpointError"]

COMPLETE_MARK = "COMPLETE"
_DIGESTS = "sha256"  # the mark's key: {file name: SHA-256 of its bytes}
_CHUNK = 1 << 20
logger = get_logger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used, the message says which and why: a
    file of a complete checkpoint differs from the one saved or failed to
    load, or a weights file is not plain tensors or does not fit the module
    it is loaded into (:mod:`speechbrain_sercl.transfer`).

    Example
    -------
    >>> raise CheckpointError("save/CKPT+x: ssl.ckpt is missing")
    Traceback (most recent call last):
    ...
    speechbrain_sercl.checkpoints.CheckpointError: save/CKPT+x: ...
    """


class AtomicCheckpointer(Checkpointer):
    """A SpeechBrain ``Checkpointer`` that only trusts finished, intact
    checkpoints.

    Arguments are those of ``speechbrain.utils.checkpoints.Checkpointer``.

    Example
    -------
    >>> import torch
    >>> model = torch.nn.Linear(2, 2)
    >>> folder = getfixture("tmp_path")
    >>> checkpointer = AtomicCheckpointer(folder, {"model": model})
    >>> good = checkpointer.save_checkpoint()
    >>> broken = folder / "CKPT+killed"  # meta written, then killed
    >>> broken.mkdir()
    >>> _ = (broken / "CKPT.yaml").write_text("unixtime: 9.9e9\\n")
    >>> [c.path.name for c in checkpointer.list_checkpoints()] == [
    ...     good.path.name
    ... ]
    True
    >>> checkpointer.recover_if_possible().path == good.path
    True
    >>> broken.exists()
    False
    >>> _ = (good.path / "model.ckpt").write_bytes(b"damaged")
    >>> checkpointer.find_checkpoint()
    Traceback (most recent call last):
    ...
    speechbrain_sercl.checkpoints.CheckpointError: ...model.ckpt ...
    >>> checkpointer.recover_if_possible() is None  # none intact is left
    True
    """

    def save_checkpoint(
        self, meta=None, end_of_epoch=True, name=None, verbosity=logging.INFO
    ):
        """Save as SpeechBrain does, then mark the checkpoint complete with
        the checksums of its files.

        See ``Checkpointer.save_checkpoint`` for the arguments.
        """
        checkpoint = super().save_checkpoint(
            meta or {}, end_of_epoch, name, verbosity
        )
        if checkpoint is not None:  # the main process, which writes
            digests = {
                path.name: _sha256(path)
                for path in sorted(checkpoint.path.iterdir())
            }
            # Written whole or not at all: a mark is either absent or lists
            # every file.
            mark = checkpoint.path / COMPLETE_MARK
            with writing_atomically(mark) as tmp_path:
                with open(tmp_path, "w", encoding="utf-8") as tmp_file:
                    json.dump({_DIGESTS: digests}, tmp_file, indent=1)
        return checkpoint

    def list_checkpoints(self):
        """The complete checkpoints only (intact or not: see
        :meth:`find_checkpoint`).

        Returns
        -------
        list
            ``Checkpoint`` namedtuples of the finished checkpoints.
        """
        return [
            checkpoint
            for checkpoint in super().list_checkpoints()
            if (checkpoint.path / COMPLETE_MARK).exists()
        ]

    def find_checkpoint(
        self,
        importance_key=None,
        max_key=None,
        min_key=None,
        ckpt_predicate=None,
    ):
        """SpeechBrain's choice of checkpoint, checked to be intact.

        See ``Checkpointer.find_checkpoint`` for the arguments.

        Returns
        -------
        Checkpoint or None
            The chosen checkpoint, None when there is none.

        Raises
        ------
        CheckpointError
            When a file of the chosen checkpoint is not the one saved.
        """
        checkpoint = super().find_checkpoint(
            importance_key, max_key, min_key, ckpt_predicate
        )
        if checkpoint is not None:
            _check_intact(checkpoint.path)
        return checkpoint

    def recover_if_possible(
        self,
        importance_key=None,
        max_key=None,
        min_key=None,
        ckpt_predicate=None,
    ):
        """Remove unfinished checkpoints, then load the best intact one.

        SpeechBrain's order of preference (see
        ``Checkpointer.recover_if_possible`` for the arguments); a damaged
        checkpoint is skipped with a warning naming it and its bad file.

        Returns
        -------
        Checkpoint or None
            The checkpoint loaded, None when no intact one exists.
        """
        run_on_main(self.remove_unfinished)
        ranked = self.find_checkpoints(
            importance_key, max_key, min_key, ckpt_predicate
        )
        for checkpoint in ranked:
            try:
                _check_intact(checkpoint.path)
            except CheckpointError as error:
                logger.warning(
                    "Skipping a damaged checkpoint: %s; recovering from the "
                    "one before it, if any",
                    error,
                )
                continue
            self._load(checkpoint)
            return checkpoint
        logger.info("Would load a checkpoint here, but none found yet.")
        return None

    def load_checkpoint(self, checkpoint):
        """Check that the checkpoint is intact, then load it.

        Arguments
        ---------
        checkpoint : Checkpoint
            The checkpoint to load.

        Raises
        ------
        CheckpointError
            When one of its files is not the one saved, or (a checkpoint
            saved without checksums) it cannot be loaded.
        """
        _check_intact(checkpoint.path)
        self._load(checkpoint)

    def remove_unfinished(self):
        """Delete the checkpoint folders that a kill left unfinished."""
        for checkpoint in super().list_checkpoints():
            if not (checkpoint.path / COMPLETE_MARK).exists():
                logger.warning(
                    "Removing %s: its saving was interrupted", checkpoint.path
                )
                shutil.rmtree(checkpoint.path)

    def _load(self, checkpoint):
        """SpeechBrain's loading; a failure names the checkpoint (checked
        ones fail only for other reasons than damage, e.g. a model of
        another shape)."""
        try:
            super().load_checkpoint(checkpoint)
        except (
            RuntimeError,
            OSError,
            EOFError,
            ValueError,
            pickle.UnpicklingError,
        ) as error:
            raise CheckpointError(
                f"{checkpoint.path}: loading failed ({type(error).__name__}: "
                f"{' '.join(str(error).split())})"
            ) from error


def _check_intact(folder):
    """Check the files of a complete checkpoint against its mark.

    Arguments
    ---------
    folder : pathlib.Path
        A checkpoint folder holding the complete mark.

    Raises
    ------
    CheckpointError
        Naming the folder and the first file that is missing, added or
        changed since the checkpoint was saved, or an unreadable mark. A
        mark without checksums (older checkpoints) is not checked.
    """
    recorded = _recorded_digests(folder)
    if recorded is None:
        return
    present = {
        path.name for path in folder.iterdir() if path.name != COMPLETE_MARK
    }
    for name in sorted(present | set(recorded)):
        if name not in present:
            problem = "is missing"
        elif name not in recorded:
            problem = "was not there when the checkpoint was saved"
        elif _sha256(folder / name) != recorded[name]:
            problem = "is not the file saved (truncated or corrupt)"
        else:
            continue
        raise CheckpointError(f"{folder}: {name} {problem}")


def _recorded_digests(folder):
    """``{file name: SHA-256}`` from the mark; None for an empty mark."""
    mark = folder / COMPLETE_MARK
    text = mark.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        return None
    try:
        digests = json.loads(text)[_DIGESTS]
    except (ValueError, KeyError, TypeError):
        digests = None
    if not isinstance(digests, dict):
        raise CheckpointError(f"{mark}: an unreadable complete mark")
    return digests


def _sha256(path):
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
