"""Which code a ``hyperparams.yaml`` would run, checked before loading it.

Loading a HyperPyYAML file runs code: ``!new:`` builds objects, ``!name:``
hands out functions and classes, ``!apply:`` and ``!applyref:`` call
functions, ``!module:`` imports modules, ``!include:`` reads another file,
and the YAML is finally read with PyYAML's full loader, whose
``!!python/object/apply:`` tags call anything (see
``hyperpyyaml/core.py``). Loading a model folder or a Hub id is thus
running its author's code: load only sources you trust.

:func:`untrusted_targets` lists what a file would run outside
:data:`TRUSTED_MODULES` without running anything: the YAML is parsed into
nodes (never constructed), so ``%TAG`` shorthands and verbatim ``!<...>``
tags are seen as what they expand to. Every target inside a trusted module
is then located (an import of that trusted module only) and must live
there: ``torch.os.system`` names ``os.system`` through an attribute of
``torch`` and is refused.

This is a guard against files that name arbitrary code, not a sandbox:
the trusted packages themselves hold functions that load or run code; the
best known are refused (:data:`REFUSED_MODULES`), but a hostile file may
still find others.

Example
-------
>>> untrusted_targets("model: !new:torch.nn.Linear [2, 3]")
[]
>>> untrusted_targets("x: !apply:os.system [ls]")
['!apply:os.system (outside torch, speechbrain, ...)']

Authors
 * speechbrain-sercl developers
"""

import inspect
import os
import pydoc

import ruamel.yaml

__all__ = [
    "REFUSED_MODULES",
    "TRUSTED_MODULES",
    "UntrustedHparamsError",
    "check_hparams_file",
    "untrusted_targets",
]

TRUSTED_MODULES = ("torch", "speechbrain", "speechbrain_sercl", "transformers")
# Parts of trusted packages that fetch, compile or run code they are given.
REFUSED_MODULES = (
    "torch.hub",
    "torch.load",
    "torch.serialization.load",
    "torch.package",
    "torch.utils.cpp_extension",
    "speechbrain.utils.superpowers",
    "transformers.dynamic_module_utils",
)
# HyperPyYAML tags that name code to import or call.
CODE_TAGS = ("!new:", "!name:", "!apply:", "!applyref:", "!module:")
# HyperPyYAML tags that only move values around.
VALUE_TAGS = ("!ref", "!copy", "!tuple", "!PLACEHOLDER")
# The core YAML types that PyYAML builds without running code.
CORE_TAG_PREFIX = "tag:yaml.org,2002:"
CORE_TYPES = (
    "str",
    "int",
    "float",
    "bool",
    "null",
    "map",
    "seq",
    "merge",
    "timestamp",
    "binary",
    "set",
    "omap",
    "pairs",
)


class UntrustedHparamsError(ValueError):
    """A hyperparameters file that would run code outside trusted modules."""


def check_hparams_file(path, trusted_modules=TRUSTED_MODULES):
    """Refuse a HyperPyYAML file that would run untrusted code.

    Arguments
    ---------
    path : str or os.PathLike
        The file (read, never loaded).
    trusted_modules : sequence of str
        The top-level packages whose code the file may run.

    Raises
    ------
    UntrustedHparamsError
        If the file names a target outside ``trusted_modules``, an
        ``!include:``, a Python tag or a tag HyperPyYAML does not know, or
        is no YAML; the message names the file and every offending tag.

    Example
    -------
    >>> path = getfixture("tmp_path") / "hyperparams.yaml"
    >>> _ = path.write_text("run: !name:subprocess.run\\n")
    >>> check_hparams_file(path)
    Traceback (most recent call last):
    ...
    speechbrain_sercl.hparams_trust.UntrustedHparamsError: ...subprocess.run...
    """
    with open(path, encoding="utf-8") as stream:
        text = stream.read()
    try:
        offenders = untrusted_targets(text, trusted_modules)
    except ruamel.yaml.YAMLError as error:
        raise UntrustedHparamsError(
            f"{os.fspath(path)} is not valid YAML: {error}"
        ) from error
    if offenders:
        raise UntrustedHparamsError(
            f"{os.fspath(path)} would run code outside the trusted modules: "
            f"{'; '.join(offenders)}. Loading a hyperparameters file runs "
            "the code it names: if you trust its source, allow it "
            "(--trust-remote-config, trust_remote_config=True)."
        )


def untrusted_targets(text, trusted_modules=TRUSTED_MODULES):
    """Every tag of a HyperPyYAML text that would run untrusted code.

    Arguments
    ---------
    text : str
        The YAML text (parsed into nodes only; nothing is built).
    trusted_modules : sequence of str
        The top-level packages whose code the text may run.

    Returns
    -------
    list of str
        One ``"<tag> (<reason>)"`` per offending tag, in file order;
        empty when the text only builds values and trusted objects.

    Raises
    ------
    ruamel.yaml.YAMLError
        If the text is not YAML.

    Example
    -------
    >>> text = '''
    ... %TAG !x! !new:
    ... ---
    ... a: !x!os.system [ls]
    ... b: !!python/object/apply:os.getcwd []
    ... c: !include:other.yaml
    ... d: !ref <a>
    ... '''
    >>> for offender in untrusted_targets(text):
    ...     print(offender)
    !new:os.system (outside torch, speechbrain, ...)
    !!python/object/apply:os.getcwd (not a HyperPyYAML or core YAML tag)
    !include:other.yaml (another file, not checked)
    """
    offenders = []
    for tag in _tags(text):
        problem = _tag_problem(tag, tuple(trusted_modules))
        if problem:
            shown = tag.replace(CORE_TAG_PREFIX, "!!")
            offenders.append(f"{shown} ({problem})")
    return offenders


def _tags(text):
    """The tag of every node of every document, in file order."""
    tags = []
    for document in ruamel.yaml.YAML().compose_all(text):
        stack = [document]
        while stack:
            node = stack.pop()
            if node is None:
                continue
            tags.append(getattr(node.tag, "value", node.tag))
            if isinstance(node.value, list):
                children = [
                    child
                    for item in node.value
                    for child in (item if isinstance(item, tuple) else [item])
                ]
                stack.extend(reversed(children))
    return tags


def _tag_problem(tag, trusted_modules):
    """Why ``tag`` is not trusted, or None."""
    if tag.startswith(CORE_TAG_PREFIX):
        if tag[len(CORE_TAG_PREFIX) :] in CORE_TYPES:
            return None
        return "not a HyperPyYAML or core YAML tag"
    if tag in VALUE_TAGS:
        return None
    if tag.startswith("!include:"):
        return "another file, not checked"
    for prefix in CODE_TAGS:
        if tag.startswith(prefix):
            return _target_problem(tag[len(prefix) :], trusted_modules)
    return "not a HyperPyYAML or core YAML tag"


def _target_problem(target, trusted_modules):
    """Why the dotted ``target`` of a code tag is not trusted, or None."""
    outside = f"outside {', '.join(trusted_modules)}"
    if not _inside(target, trusted_modules):
        return outside
    if _inside(target, REFUSED_MODULES):
        return "loads or runs code it is given"
    try:
        found = pydoc.locate(target)
    except pydoc.ErrorDuringImport as error:
        return f"cannot be imported: {error.value}"
    if found is None:
        return None  # nothing to run: loading fails on its own
    name = _defined_as(found)
    if not _inside(name, trusted_modules):
        return f"is {name}, {outside}"
    if _inside(name, REFUSED_MODULES):
        return f"is {name}, which loads or runs code it is given"
    return None


def _defined_as(found):
    """The dotted name under which ``found`` is defined (module included)."""
    if inspect.ismodule(found):
        return found.__name__
    module = getattr(found, "__module__", None) or "?"
    name = getattr(found, "__qualname__", None) or type(found).__qualname__
    return f"{module}.{name}"


def _inside(dotted, modules):
    """Whether the dotted name is one of ``modules`` or inside one."""
    return any(
        dotted == module or dotted.startswith(module + ".")
        for module in modules
    )
