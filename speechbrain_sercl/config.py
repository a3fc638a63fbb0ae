"""The package's YAMLs and their plain values.

:func:`shipped_hparams` finds a YAML that ships with the package by name;
:func:`read_config` reads what a YAML says (its references resolved, its
overrides applied) without building any object it names.

Authors
 * speechbrain-sercl developers
"""

from importlib import resources

import ruamel.yaml
from hyperpyyaml import resolve_references

__all__ = ["read_config", "shipped_hparams"]


def shipped_hparams(name):
    """The path of a YAML that ships with the package.

    Arguments
    ---------
    name : str
        ``wavlm``, ``hubert``, ``demo``, ``classifier`` or ``finetune``
        (``.yaml`` may be given).

    Returns
    -------
    str
        Its path inside the installed package.

    Example
    -------
    >>> import os
    >>> os.path.basename(shipped_hparams("wavlm"))
    'wavlm.yaml'
    >>> shipped_hparams("msp")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no shipped hparams 'msp'; shipped: classifier, ...
    """
    folder = resources.files("speechbrain_sercl") / "hparams"
    stem = name[: -len(".yaml")] if name.endswith(".yaml") else name
    path = folder / f"{stem}.yaml"
    if not path.is_file():
        shipped = sorted(p.name[:-5] for p in folder.iterdir())
        raise FileNotFoundError(
            f"no shipped hparams {name!r}; shipped: {', '.join(shipped)}"
        )
    return str(path)


def read_config(hparams_file, overrides):
    """Read the plain values of a YAML without building its objects.

    Arguments
    ---------
    hparams_file : str
        The hyperpyyaml file.
    overrides : dict
        Overrides of its keys.

    Returns
    -------
    dict
        The YAML with references resolved (tags such as ``!new:`` left
        unevaluated).
    """
    with open(hparams_file, encoding="utf-8") as stream:
        resolved = resolve_references(stream, overrides)
    return ruamel.yaml.YAML(typ="rt").load(resolved)
