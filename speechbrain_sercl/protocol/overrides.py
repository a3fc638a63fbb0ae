"""Overrides given to the fold runner, and how they reach each step.

``sercl folds`` takes three kinds of ``--key=value`` items:

- SpeechBrain run options (``--device=cuda:0``, ``--precision=bf16``,
  ``--debug``, ...): passed to every step as they are;
- ``--key=value``: an override for every step whose YAML declares ``key``;
- ``--<method>.key=value`` (``contrastive``, ``classifier`` or
  ``finetune``): an override for that method's steps alone.

Values are read as YAML (``null``, ``[1, 2]``, ``1e-3``, ``{a: 1}``) and
written back as YAML flow text for the step, so they reach it unchanged.

Example
-------
>>> items = ["--device=cpu", "--lr", "1e-3", "--finetune.lr=null"]
>>> options = parse_arguments(items, ("classifier", "finetune"))
>>> options.run_options, options.overrides, options.by_method
(['--device=cpu'], {'lr': 0.001}, {'finetune': {'lr': None}})
>>> override_arguments({"batches_per_epoch": None, "milestones": [5, 8]})
['--batches_per_epoch=null', '--milestones=[5, 8]']
"""

import json
from dataclasses import dataclass, field

import ruamel.yaml
from speechbrain.utils.run_opts import RunOptions

__all__ = [
    "Arguments",
    "declared_keys",
    "override_arguments",
    "parse_arguments",
    "yaml_text",
]

RUN_OPTIONS = frozenset(RunOptions.__dataclass_fields__) - {"param_file"}


@dataclass
class Arguments:
    """What the runner was given, sorted by where it goes.

    Arguments
    ---------
    run_options : list of str
        SpeechBrain run options, for every step.
    overrides : dict
        key -> value, for every step that declares the key.
    by_method : dict
        method -> {key: value}, for that method's steps.
    """

    run_options: list = field(default_factory=list)
    overrides: dict = field(default_factory=dict)
    by_method: dict = field(default_factory=dict)


def parse_arguments(arguments, methods):
    """Sort ``--key=value`` / ``--key value`` / ``--flag`` items.

    Arguments
    ---------
    arguments : list of str
        The items.
    methods : iterable of str
        The method names that the ``--<method>.key`` form accepts.

    Returns
    -------
    Arguments
        Run options, overrides and per-method overrides.

    Example
    -------
    >>> parse_arguments(["--fold"], ["finetune"])
    Traceback (most recent call last):
    ...
    ValueError: --fold needs a value (--fold=VALUE)
    >>> parse_arguments(["--train.lr=1"], ["finetune"])
    Traceback (most recent call last):
    ...
    ValueError: --train.lr=...: 'train' is not a method (finetune)
    """
    methods = tuple(methods)
    parsed = Arguments()
    items = list(arguments)
    while items:
        item = items.pop(0)
        if not item.startswith("--"):
            raise ValueError(f"expected --key=value, got {item!r}")
        key, has_value, text = item[2:].partition("=")
        if not has_value and items and not items[0].startswith("--"):
            text, has_value = items.pop(0), True
        if key in RUN_OPTIONS:
            parsed.run_options.append(f"--{key}={text}" if has_value else item)
            continue
        if not has_value:
            raise ValueError(f"--{key} needs a value (--{key}=VALUE)")
        value = ruamel.yaml.YAML(typ="safe").load(text)
        method, dot, name = key.partition(".")
        if not dot:
            parsed.overrides[key] = value
        elif method in methods:
            parsed.by_method.setdefault(method, {})[name] = value
        else:
            raise ValueError(
                f"--{key}=...: {method!r} is not a method "
                f"({', '.join(methods)})"
            )
    return parsed


def yaml_text(value):
    """A value as YAML flow text that SpeechBrain's command line reads back.

    A string that YAML reads back as itself stays plain (``paper``,
    ``/data/CASIA``); anything else is written as JSON, which YAML reads.
    SpeechBrain splits its command line on ``=``, so a value whose text
    holds one is refused.

    Arguments
    ---------
    value : object
        A plain value (str, number, bool, None, list, dict).

    Returns
    -------
    str
        Its YAML (JSON-compatible) text.

    Example
    -------
    >>> yaml_text("/models/wavlm"), yaml_text(True), yaml_text(0.5)
    ('/models/wavlm', 'true', '0.5')
    >>> yaml_text("null"), yaml_text("a: b"), yaml_text([1, "x"])
    ('"null"', '"a: b"', '[1, "x"]')
    >>> yaml_text("a=b")
    Traceback (most recent call last):
    ...
    ValueError: a=b: SpeechBrain's command line cannot carry '='
    """
    text = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and _reads_back(value):
        text = value
    if "=" in text:
        raise ValueError(f"{text}: SpeechBrain's command line cannot carry '='")
    return text


def _reads_back(text):
    """Whether YAML reads ``text`` as that very string."""
    try:
        return ruamel.yaml.YAML(typ="safe").load(text) == text
    except ruamel.yaml.YAMLError:
        return False


def override_arguments(overrides):
    """``--key=<YAML text>`` items for a step's command line.

    Arguments
    ---------
    overrides : dict
        key -> plain value.

    Returns
    -------
    list of str
        One item per key, in order.
    """
    return [f"--{key}={yaml_text(value)}" for key, value in overrides.items()]


def declared_keys(hparams_file):
    """The top-level keys of a hyperpyyaml file (nothing is built).

    Arguments
    ---------
    hparams_file : str
        The YAML.

    Returns
    -------
    set of str
        Its keys.

    Example
    -------
    >>> path = getfixture("tmp_path") / "step.yaml"
    >>> _ = path.write_text("lr: 0.1\\nssl: !new:torch.nn.Identity\\n")
    >>> sorted(declared_keys(path))
    ['lr', 'ssl']
    """
    with open(hparams_file, encoding="utf-8") as stream:
        return set(ruamel.yaml.YAML(typ="rt").load(stream) or {})
