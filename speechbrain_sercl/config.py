"""The package's YAMLs and their plain values.

:func:`shipped_hparams` finds a YAML that ships with the package by name;
:func:`read_config` reads what a YAML says (its references resolved, its
overrides applied) without building any object it names.

Every step YAML names the run it belongs to with the key :data:`RUN_KEY`:
a run index (run ``i`` tests fold ``i mod K`` of each corpus of ``K``
folds) or ``final``. Version 0.1 called that key ``fold``; a YAML or a
command line that still does is read as before, with a warning
(:func:`run_key`, :func:`run_of`, :func:`current_overrides`).

Authors
 * speechbrain-sercl developers
"""

import logging
from importlib import resources

import ruamel.yaml
from hyperpyyaml import resolve_references

__all__ = [
    "OLD_RUN_KEY",
    "RUN_KEY",
    "current_overrides",
    "read_config",
    "run_key",
    "run_of",
    "shipped_hparams",
]

RUN_KEY = "run"
OLD_RUN_KEY = "fold"  # version 0.1's name of RUN_KEY
logger = logging.getLogger(__name__)


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


def _warn_old_key(where):
    logger.warning(
        "%s: the key %r is now %r (%r still works, for now)",
        where,
        OLD_RUN_KEY,
        RUN_KEY,
        OLD_RUN_KEY,
    )


def run_key(declared, where):
    """The key a YAML names its run with: :data:`RUN_KEY`, or, in a YAML
    written for version 0.1, :data:`OLD_RUN_KEY` (with a warning).

    Arguments
    ---------
    declared : collection of str
        The YAML's top-level keys.
    where : str
        The YAML, for the warning.

    Returns
    -------
    str

    Example
    -------
    >>> run_key({"run", "lr"}, "wavlm.yaml")
    'run'
    """
    if RUN_KEY not in declared and OLD_RUN_KEY in declared:
        _warn_old_key(where)
        return OLD_RUN_KEY
    return RUN_KEY


def run_of(hparams, where):
    """The run of a step's hyperparameters (see :func:`run_key`).

    Arguments
    ---------
    hparams : dict
        A step's loaded or read YAML.
    where : str
        The YAML, for the warning.

    Returns
    -------
    int or str
        A run index or ``final``.

    Example
    -------
    >>> run_of({"run": "final"}, "step/hyperparams.yaml")
    'final'
    """
    return hparams[run_key(hparams, where)]


def current_overrides(hparams_file, overrides):
    """A recipe's command-line overrides, with 0.1's ``--fold=<run>``
    given as ``--run=<run>`` (with a warning) when the YAML names its run
    ``run``.

    Arguments
    ---------
    hparams_file : str
        The recipe's YAML.
    overrides : str or dict
        The overrides ``speechbrain.parse_arguments`` returns (YAML text).

    Returns
    -------
    str or dict
        The overrides as given, or, if they rename, as a dict.

    Example
    -------
    >>> yaml = getfixture("tmp_path") / "step.yaml"
    >>> _ = yaml.write_text("run: 0\\nlr: 0.1\\n")
    >>> current_overrides(yaml, "fold: 3\\nlr: 0.5\\n")
    {'run': 3, 'lr': 0.5}
    >>> current_overrides(yaml, "lr: 0.5\\n")
    'lr: 0.5\\n'
    """
    given = overrides
    if isinstance(given, str):
        given = ruamel.yaml.YAML(typ="safe").load(given) or {}
    if OLD_RUN_KEY not in given:
        return overrides
    with open(hparams_file, encoding="utf-8") as stream:
        declared = ruamel.yaml.YAML(typ="rt").load(stream) or {}
    if RUN_KEY not in declared:
        return overrides
    _warn_old_key(f"{hparams_file} (--{OLD_RUN_KEY}=...)")
    return {
        (RUN_KEY if key == OLD_RUN_KEY else key): value
        for key, value in given.items()
    }
