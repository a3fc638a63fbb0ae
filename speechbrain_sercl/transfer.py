"""Strict parameter transfer for SpeechBrain's ``Pretrainer``.

SpeechBrain's default transfer hook for a ``torch.nn.Module``
(``speechbrain.utils.checkpoints.torch_parameter_transfer``) loads a state
dict with ``strict=False`` and only logs a warning for every missing or
unexpected key: a stage-1 file that does not fit the stage-2 model would
leave part of it at its random initialisation and the run would carry on.
:func:`strict_parameter_transfer` is the same load, but a missing or an
unexpected key is an error naming the file and the keys. Give it to the
``Pretrainer`` as a custom hook of each loadable::

    pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
        loadables:
            ssl: !ref <ssl>
        custom_hooks:
            ssl: !name:speechbrain_sercl.transfer.strict_parameter_transfer

Authors
 * speechbrain-sercl developers
"""

import os
import pickle
import re

import torch
from speechbrain.utils.checkpoints import hook_on_loading_state_dict_checkpoint

from speechbrain_sercl.checkpoints import CheckpointError

__all__ = [
    "load_label_encoder",
    "load_tensors",
    "strict_parameter_transfer",
]

MAX_KEYS_SHOWN = 10


def load_tensors(path):
    """Read a state-dict file that holds tensors and nothing else.

    The file is read on the CPU with ``weights_only=True``, so unpickling
    builds no object but tensors and plain containers (and runs no code);
    what torch refuses, or a mapping holding anything but tensors, is
    refused in one line naming the file, without torch's advice to retry
    with ``weights_only=False``.

    Arguments
    ---------
    path : str or os.PathLike
        The file.

    Returns
    -------
    dict
        Parameter name -> tensor.

    Raises
    ------
    CheckpointError
        If the file is truncated or corrupt, or holds anything else.

    Example
    -------
    >>> import torch
    >>> path = getfixture("tmp_path") / "layer.ckpt"
    >>> torch.save({"weight": torch.ones(2), "step": 3}, path)
    >>> load_tensors(path)
    Traceback (most recent call last):
    ...
    speechbrain_sercl.checkpoints.CheckpointError: .../layer.ckpt: refused: \
step holds int, not a tensor (a checkpoint holds tensors only)
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{_describe(path)}: refused: {_refusal(error)} (a checkpoint "
            "holds tensors only; unpickling anything else could run code)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{_describe(path)}: not a readable checkpoint (truncated or "
            f"corrupt?): {_first_line(error)}"
        ) from None
    problem = _not_tensors(state)
    if problem:
        raise CheckpointError(
            f"{_describe(path)}: refused: {problem} (a checkpoint holds "
            "tensors only)"
        )
    return state


def strict_parameter_transfer(obj, path):
    """Load a state dict into a module; every key must match, both ways.

    Arguments
    ---------
    obj : torch.nn.Module
        The module to load into.
    path : str or os.PathLike
        The state-dict file (read on the CPU with ``weights_only=True``,
        with SpeechBrain's key patching, as its default hook does).

    Raises
    ------
    CheckpointError
        If the file is not plain tensors (:func:`load_tensors`), lacks
        some of the module's keys or holds keys the module does not have;
        the message names the file (and the file a link points to) and the
        keys.

    Example
    -------
    >>> import torch
    >>> path = getfixture("tmp_path") / "layer.ckpt"
    >>> torch.save(torch.nn.Linear(2, 3).state_dict(), path)
    >>> layer = torch.nn.Linear(2, 3)
    >>> strict_parameter_transfer(layer, path)
    >>> torch.equal(layer.weight, torch.load(path)["weight"])
    True
    >>> strict_parameter_transfer(torch.nn.Linear(2, 3, bias=False), path)
    Traceback (most recent call last):
    ...
    speechbrain_sercl.checkpoints.CheckpointError: .../layer.ckpt does not fit \
Linear: unexpected keys ['bias']
    """
    # As SpeechBrain's torch_patched_state_dict_load, but never unpickling
    # anything but tensors, whatever torch's default.
    state_dict = hook_on_loading_state_dict_checkpoint(load_tensors(path))
    expected = set(obj.state_dict())
    problems = [
        _keys("missing", expected - set(state_dict)),
        _keys("unexpected", set(state_dict) - expected),
    ]
    problems = [problem for problem in problems if problem]
    if problems:
        raise CheckpointError(
            f"{_describe(path)} does not fit {type(obj).__name__}: "
            + "; ".join(problems)
        )
    obj.load_state_dict(state_dict, strict=True)


def load_label_encoder(encoder, path, n_classes):
    """Load a label encoder that must name exactly ``n_classes`` emotions.

    A label file with more or fewer labels than the classifier has outputs
    would decode indices to the wrong names (or fail on some of them);
    give this hook to the ``Pretrainer`` with the classifier's class count::

        custom_hooks:
            label_encoder: !name:speechbrain_sercl.transfer.load_label_encoder
                n_classes: !ref <n_classes>

    Arguments
    ---------
    encoder : speechbrain.dataio.encoder.CategoricalEncoder
        The encoder to load into.
    path : str or os.PathLike
        SpeechBrain's label file.
    n_classes : int
        The classifier's number of outputs.

    Raises
    ------
    CheckpointError
        If the file holds another number of labels, or labels whose indices
        are not 0 ... n_classes - 1; the message names the file.

    Example
    -------
    >>> from speechbrain.dataio.encoder import CategoricalEncoder
    >>> path = getfixture("tmp_path") / "label_encoder.ckpt"
    >>> written = CategoricalEncoder()
    >>> written.update_from_iterable(["angry", "sad", "happy"])
    >>> written.save(path)
    >>> encoder = CategoricalEncoder()
    >>> load_label_encoder(encoder, path, n_classes=3)
    >>> encoder.decode_ndim([0, 2])
    ['angry', 'happy']
    >>> load_label_encoder(CategoricalEncoder(), path, n_classes=4)
    Traceback (most recent call last):
    ...
    speechbrain_sercl.checkpoints.CheckpointError: .../label_encoder.ckpt \
names 3 emotions ...
    """
    encoder.load(path)
    if sorted(encoder.ind2lab) != list(range(n_classes)):
        raise CheckpointError(
            f"{_describe(path)} names {len(encoder)} emotions "
            f"({sorted(encoder.lab2ind, key=encoder.lab2ind.get)}) but the "
            f"classifier has {n_classes} outputs"
        )
    encoder.expect_len(n_classes)


def _refusal(error):
    """What torch's weights-only unpickler refused, in a few words."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    if found:
        return f"it names {found[1]}"
    return "it holds objects other than tensors"


def _first_line(error):
    """An error's first sentence, or its type."""
    text = " ".join(str(error).split())
    return text.split(". ")[0].rstrip(".") or type(error).__name__


def _not_tensors(state):
    """Why a loaded object is not a mapping of tensors, or None."""
    if not isinstance(state, dict):
        return f"it holds {type(state).__name__}, not a mapping of tensors"
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            return f"{key} holds {type(value).__name__}, not a tensor"
    return None


def _keys(kind, keys):
    """``"<kind> keys [...]"`` for a non-empty set of keys, else ``""``."""
    if not keys:
        return ""
    keys = sorted(keys)
    more = len(keys) - MAX_KEYS_SHOWN
    suffix = f" and {more} more" if more > 0 else ""
    return f"{kind} keys {keys[:MAX_KEYS_SHOWN]}{suffix}"


def _describe(path):
    """The path, and the file it links to if it is a link."""
    path = os.fspath(path)
    if not os.path.islink(path):
        return path
    return f"{path} (a link to {os.path.realpath(path)})"
