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

import torch
from speechbrain.utils.checkpoints import hook_on_loading_state_dict_checkpoint

__all__ = ["load_label_encoder", "strict_parameter_transfer"]

MAX_KEYS_SHOWN = 10


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
    RuntimeError
        If the file lacks some of the module's keys or holds keys the
        module does not have; the message names the file (and the file a
        link points to) and the keys.

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
    RuntimeError: .../layer.ckpt does not fit Linear: unexpected keys ['bias']
    """
    # As SpeechBrain's torch_patched_state_dict_load, but never unpickling
    # anything but tensors and plain containers, whatever torch's default.
    state_dict = hook_on_loading_state_dict_checkpoint(
        torch.load(path, map_location="cpu", weights_only=True)
    )
    expected = set(obj.state_dict())
    problems = [
        _keys("missing", expected - set(state_dict)),
        _keys("unexpected", set(state_dict) - expected),
    ]
    problems = [problem for problem in problems if problem]
    if problems:
        raise RuntimeError(
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
    RuntimeError
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
    RuntimeError: .../label_encoder.ckpt names 3 emotions ...
    """
    encoder.load(path)
    if sorted(encoder.ind2lab) != list(range(n_classes)):
        raise RuntimeError(
            f"{_describe(path)} names {len(encoder)} emotions "
            f"({sorted(encoder.lab2ind, key=encoder.lab2ind.get)}) but the "
            f"classifier has {n_classes} outputs"
        )
    encoder.expect_len(n_classes)


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
