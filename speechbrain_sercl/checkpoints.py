"""Checkpoints that a kill during saving cannot leave half-written.

SpeechBrain's ``Checkpointer`` writes a checkpoint's meta file first and its
parameter files after, so a process killed while saving leaves a folder that
looks like a checkpoint but misses files (or holds truncated ones), and the
next run fails to load it. :class:`AtomicCheckpointer` marks a checkpoint
complete only after its last file is written, ignores folders without the
mark, and removes them (with a warning) before recovering. Recipes use it in
place of SpeechBrain's class; everything else is SpeechBrain's.

Authors
 * speechbrain-sercl developers
"""

import logging
import shutil

from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.distributed import run_on_main
from speechbrain.utils.logger import get_logger

__all__ = ["COMPLETE_MARK", "AtomicCheckpointer"]

COMPLETE_MARK = "COMPLETE"
logger = get_logger(__name__)


class AtomicCheckpointer(Checkpointer):
    """A SpeechBrain ``Checkpointer`` that only trusts finished checkpoints.

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
    """

    def save_checkpoint(
        self, meta=None, end_of_epoch=True, name=None, verbosity=logging.INFO
    ):
        """Save as SpeechBrain does, then mark the checkpoint complete.

        See ``Checkpointer.save_checkpoint`` for the arguments.
        """
        checkpoint = super().save_checkpoint(
            meta or {}, end_of_epoch, name, verbosity
        )
        if checkpoint is not None:  # the main process, which writes
            (checkpoint.path / COMPLETE_MARK).touch()
        return checkpoint

    def list_checkpoints(self):
        """The complete checkpoints only.

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

    def recover_if_possible(self, *args, **kwargs):
        """Remove unfinished checkpoints, then recover as SpeechBrain does.

        See ``Checkpointer.recover_if_possible`` for the arguments.
        """
        run_on_main(self.remove_unfinished)
        return super().recover_if_possible(*args, **kwargs)

    def remove_unfinished(self):
        """Delete the checkpoint folders that a kill left unfinished."""
        for checkpoint in super().list_checkpoints():
            if not (checkpoint.path / COMPLETE_MARK).exists():
                logger.warning(
                    "Removing %s: its saving was interrupted", checkpoint.path
                )
                shutil.rmtree(checkpoint.path)
