"""Checkpointing every global random generator a training run draws from.

SpeechBrain's ``SaveableGenerator`` restores torch's generators only, but
the speech models also draw from numpy (Hugging Face's time masking uses
``np.random``) and code may use Python's ``random``. A run resumed from a
mid-epoch checkpoint reproduces the uninterrupted run only if all of them
continue where they were, so recipes put a :class:`GlobalRandomState` among
the checkpointer's recoverables.

Under DDP the checkpoint holds the main process's states, which every
process restores: a resumed multi-process run is deterministic, but not
bitwise equal to the uninterrupted one.

Authors
 * speechbrain-sercl developers
"""

import random

import numpy as np
import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

__all__ = ["GlobalRandomState"]


@register_checkpoint_hooks
class GlobalRandomState:
    """Saves and restores torch (CPU, CUDA), numpy and Python random states.

    Example
    -------
    >>> path = getfixture("tmp_path") / "rng.ckpt"
    >>> state = GlobalRandomState()
    >>> state.save(path)
    >>> expected = (torch.rand(1), np.random.rand(), random.random())
    >>> state.load(path, end_of_epoch=False)
    >>> (torch.rand(1), np.random.rand(), random.random()) == expected
    True
    """

    @mark_as_saver
    def save(self, path):
        """Write the states of every global generator.

        Arguments
        ---------
        path : str
            Where to save.
        """
        states = {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            states["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(states, path)

    @mark_as_loader
    def load(self, path, end_of_epoch):
        """Restore the states written by :meth:`save`.

        Arguments
        ---------
        path : str
            Where to load from.
        end_of_epoch : bool
            Unused: the states are restored at any checkpoint.
        """
        del end_of_epoch
        states = torch.load(path, weights_only=False)
        torch.set_rng_state(states["torch"])
        np.random.set_state(states["numpy"])
        random.setstate(states["python"])
        if "cuda" in states and torch.cuda.is_available():
            devices = torch.cuda.device_count()
            torch.cuda.set_rng_state_all(states["cuda"][:devices])
