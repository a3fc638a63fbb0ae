"""Whether a model's ``hyperparams.yaml`` is one that ``sercl export``
writes, checked before anything is built.

Loading a HyperPyYAML file runs code: ``!new:`` builds objects, ``!name:``
hands out functions and classes, ``!apply:`` and ``!applyref:`` call
functions, ``!module:`` imports modules, ``!include:`` reads another file,
and the text is finally read by a YAML loader whose ``!!python/...`` tags
call anything. Even a plain string is not safe: HyperPyYAML reads a plain
scalar ``(...)`` as a tuple by handing its inside to PyYAML's unsafe
loader (``hyperpyyaml/core.py``, ``_make_tuple``), so
``n_classes: (!!python/object/apply:os.system [...])`` runs a command.

The check is therefore an allow-list of one shape: the template every
export is written from (``templates/inference.yaml``). A file is accepted
only if it has the template's keys, tags (the exact ``!new:``, ``!name:``
and ``!apply:`` targets, with the template's arguments), references and
constants (a target may keep its spelling of version 0.1, see
:mod:`speechbrain_sercl._moved`: exports written before still load); only
the template's ``!PLACEHOLDER`` values may differ, and they
must be plain data: numbers, strings, lists and mappings with string
keys, with no tag, no anchor or alias, no key that turns on remote code
(:data:`REMOTE_CODE_KEYS`) and no string that HyperPyYAML would read as a
tuple. YAML directives (``%TAG``) and further documents are refused too.
The file is parsed into YAML nodes and compared; nothing is imported or
built, so the check itself runs no code of the file.

Example
-------
>>> export_problems("x: !apply:os.system [ls]")[0]
'line 1: x: !apply:os.system is not in an export'

Authors
 * speechbrain-sercl developers
"""

import os
from functools import lru_cache
from importlib import resources

import ruamel.yaml
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from speechbrain_sercl._moved import is_old_spelling

__all__ = [
    "REMOTE_CODE_KEYS",
    "UntrustedHparamsError",
    "check_hparams_file",
    "check_hparams_text",
    "export_problems",
]

TEMPLATE = "inference.yaml"
PLACEHOLDER = "!PLACEHOLDER"
# Keys of a Hugging Face configuration that make transformers import code
# shipped with a model.
REMOTE_CODE_KEYS = ("trust_remote_code", "auto_map")
CORE_PREFIX = "tag:yaml.org,2002:"
# What plain data may be: the JSON types.
DATA_TAGS = tuple(
    CORE_PREFIX + name
    for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
HOW_TO_ALLOW = (
    "loading it would run what the file names; if you trust its source, "
    "pass --trust-remote-config (trust_remote_config=True)"
)


class UntrustedHparamsError(ValueError):
    """A hyperparameters file that is not one ``sercl export`` writes."""


def check_hparams_file(path):
    """Read a model's ``hyperparams.yaml`` once and check it.

    Arguments
    ---------
    path : str or os.PathLike
        The file (read, never loaded).

    Returns
    -------
    str
        The text that was checked: load this text, not the file again,
        which may have changed since.

    Raises
    ------
    UntrustedHparamsError
        As :func:`check_hparams_text`, or if the file is not UTF-8 text.

    Example
    -------
    >>> path = getfixture("tmp_path") / "hyperparams.yaml"
    >>> _ = path.write_text("run: !name:subprocess.run\\n")
    >>> try:
    ...     check_hparams_file(path)
    ... except UntrustedHparamsError as error:
    ...     print(str(error).split(", ", 1)[1][:53])
    line 1: run: !name:subprocess.run is not in an export
    """
    path = os.fspath(path)
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UntrustedHparamsError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    check_hparams_text(text, path)
    return text


def check_hparams_text(text, path="hyperparams.yaml"):
    """Refuse a HyperPyYAML text that is not the shape of an export.

    Arguments
    ---------
    text : str
        The YAML text (parsed into nodes only; nothing is built).
    path : str
        The file it came from, for the message.

    Raises
    ------
    UntrustedHparamsError
        One line: the file, the line and what is refused there (the first
        problem in file order, and how many more there are).

    Example
    -------
    >>> try:
    ...     check_hparams_text("a: 1", "model/hyperparams.yaml")
    ... except UntrustedHparamsError as error:
    ...     print(str(error)[:56])
    model/hyperparams.yaml, line 1: a: 1 is not in an export
    """
    problems = export_problems(text)
    if problems:
        more = len(problems) - 1
        also = f" (and {more} more)" if more else ""
        raise UntrustedHparamsError(
            f"{path}, {problems[0]}{also}: not a hyperparams.yaml written by "
            f"`sercl export`; {HOW_TO_ALLOW}"
        )


def export_problems(text):
    """Every way a HyperPyYAML text differs from an export's shape.

    Arguments
    ---------
    text : str
        The YAML text (parsed into nodes only; nothing is built).

    Returns
    -------
    list of str
        ``"line <n>: <problem>"`` in file order; empty for an export.

    Example
    -------
    >>> text = '''
    ... %TAG !x! !new:
    ... ---
    ... a: !x!os.system [ls]
    ... '''
    >>> for problem in export_problems(text):
    ...     print(problem)
    line 2: a YAML directive (%TAG, %YAML), which an export never has
    line 4: a: !new:os.system is not in an export
    line 4: the file lacks sample_rate, n_classes, ..., which an export has
    """
    problems = [
        (number, "a YAML directive (%TAG, %YAML), which an export never has")
        for number, line in enumerate(text.splitlines(), start=1)
        if line.startswith("%")
    ]
    try:
        documents = list(ruamel.yaml.YAML().compose_all(text))
    except ruamel.yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        number = mark.line + 1 if mark else 1
        problem = " ".join(str(getattr(error, "problem", error)).split())
        return [f"line {number}: not valid YAML ({problem})"]
    if len(documents) != 1 or documents[0] is None:
        problems.append((1, f"{len(documents)} YAML documents, not one"))
    else:
        problems += _Comparison().differences(documents[0], _template())
    problems.sort(key=lambda found: found[0])  # stable: walk order in a line
    return [f"line {number}: {problem}" for number, problem in problems]


@lru_cache(maxsize=1)
def _template():
    """The export template's root node."""
    text = (
        resources.files("speechbrain_sercl")
        .joinpath("templates", TEMPLATE)
        .read_text(encoding="utf-8")
    )
    return ruamel.yaml.YAML().compose(text)


class _Comparison:
    """One walk of a document against the template, remembering the nodes
    seen (an alias is the same node met twice)."""

    def __init__(self):
        self.seen = set()

    def differences(self, node, expected, where=""):
        """``(line, problem)`` for each difference under ``node``."""
        if expected.tag == PLACEHOLDER:
            return self.data_problems(node, where)
        reused = self._reused(node, where)
        if reused:
            return [reused]
        if type(node) is not type(expected) or not _same_tag(node, expected):
            return [_line(node, _not_in_export(node, where, expected))]
        if isinstance(node, MappingNode):
            return self._mapping_differences(node, expected, where)
        if isinstance(node, SequenceNode):
            return self._sequence_differences(node, expected, where)
        if node.value != expected.value:
            return [_line(node, _not_in_export(node, where, expected))]
        return []

    def data_problems(self, node, where):
        """``(line, problem)`` for what is not plain data under ``node``."""
        reused = self._reused(node, where)
        if reused:
            return [reused]
        if _may_be_tuple(node):
            return [_line(node, _tuple_problem(where, node.value))]
        if node.tag not in DATA_TAGS:
            shown = _shown(node)
            return [_line(node, f"{where}: {shown} where an export has data")]
        if isinstance(node, MappingNode):
            problems = []
            for key, value in node.value:
                name, problem = self._data_key(key, where)
                problems += [problem] if problem else []
                problems += self.data_problems(value, _join(where, name))
            return problems
        if isinstance(node, SequenceNode):
            return [
                problem
                for index, item in enumerate(node.value)
                for problem in self.data_problems(item, f"{where}[{index}]")
            ]
        return []

    def _reused(self, node, where):
        """The problem of an anchored or aliased node, else None."""
        if id(node) in self.seen:
            return _line(node, f"{where}: an alias, which an export never has")
        self.seen.add(id(node))
        if node.anchor:
            return _line(
                node,
                f"{where}: an anchor (&{node.anchor}), which an export "
                "never has",
            )
        return None

    def _data_key(self, key, where):
        """The name of a key of plain data, and its problem or None."""
        self.seen.add(id(key))
        if _may_be_tuple(key):
            return "?", _line(key, _tuple_problem(where, key.value))
        if key.tag != CORE_PREFIX + "str":
            return "?", _line(key, f"{_join(where, '?')}: not a string key")
        name = key.value
        if name in REMOTE_CODE_KEYS:
            return name, _line(
                key, f"{_join(where, name)}: turns on code shipped with a model"
            )
        return name, None

    def _mapping_differences(self, node, expected, where):
        wanted = {key.value: value for key, value in expected.value}
        problems, found = [], set()
        for key, value in node.value:
            self.seen.add(id(key))
            name = key.value if isinstance(key, ScalarNode) else None
            inner = _join(where, name or "?")
            if key.tag != CORE_PREFIX + "str" or name not in wanted:
                problems.append(_line(key, _not_in_export(value, inner)))
            elif name in found:
                problems.append(_line(key, f"{inner}: given twice"))
            else:
                found.add(name)
                problems += self.differences(value, wanted[name], inner)
        missing = [name for name in wanted if name not in found]
        if missing:
            problems.append(
                _line(
                    node,
                    f"{where or 'the file'} lacks {', '.join(missing)}, "
                    "which an export has",
                )
            )
        return problems

    def _sequence_differences(self, node, expected, where):
        if len(node.value) != len(expected.value):
            return [
                _line(
                    node,
                    f"{where}: {len(node.value)} items where an export has "
                    f"{len(expected.value)}",
                )
            ]
        return [
            problem
            for index, (item, wanted) in enumerate(
                zip(node.value, expected.value, strict=True)
            )
            for problem in self.differences(item, wanted, f"{where}[{index}]")
        ]


def _same_tag(node, expected):
    """Whether ``node`` has the template's tag, or its spelling in an
    export of version 0.1 (:mod:`speechbrain_sercl._moved`)."""
    return node.tag == expected.tag or is_old_spelling(node.tag, expected.tag)


def _may_be_tuple(node):
    """Whether HyperPyYAML may read a scalar as a tuple: it resolves a
    plain ``(...)`` to ``!tuple``, and ruamel may dump a quoted string
    plain."""
    return isinstance(node, ScalarNode) and node.value.startswith("(")


def _tuple_problem(where, value):
    """Why a string that HyperPyYAML may read as a tuple is refused."""
    return (
        f"{where}: {value[:40]!r} may be read as a tuple, by a loader that "
        "runs code"
    )


def _not_in_export(node, where, expected=None):
    """``<where>: <what node is> is not in an export`` (and what is)."""
    shown = _shown(node)
    if expected is None:
        return f"{where}: {shown} is not in an export"
    return f"{where}: {shown} where an export has {_shown(expected)}"


def _shown(node):
    """A node as a message shows it: its tag (and value), a short plain
    value, or the first tag a mapping or list holds."""
    if node.tag not in DATA_TAGS:
        tag = node.tag.replace(CORE_PREFIX, "!!")
        plain = isinstance(node, ScalarNode) and node.value
        return f"{tag} {node.value[:60]}" if plain else tag
    if isinstance(node, ScalarNode):
        return repr(node.value[:40]) if node.value[:1] == "(" else node.value
    kind = "a mapping" if isinstance(node, MappingNode) else "a list"
    tag = _first_tag(node, set())
    return f"{kind} holding {tag}" if tag else kind


def _first_tag(node, seen):
    """The first tag of other than plain data under ``node``, or None."""
    if id(node) in seen:
        return None
    seen.add(id(node))
    if node.tag not in DATA_TAGS:
        return node.tag.replace(CORE_PREFIX, "!!")
    children = []
    if isinstance(node, MappingNode):
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, SequenceNode):
        children = node.value
    return next(
        (tag for child in children if (tag := _first_tag(child, seen))), None
    )


def _line(node, problem):
    """``(line number, problem)`` at a node."""
    return node.start_mark.line + 1, problem


def _join(where, name):
    """The dotted path of a key under ``where``."""
    return f"{where}.{name}" if where else str(name)
