"""The import paths of version 0.1, where every module sat at the root.

Version 0.2 groups the modules into layers (``data``, ``method``,
``inference``, ``reporting``, ``protocol``; see ``docs/design.md``). Users'
scripts and YAMLs, and the ``hyperparams.yaml`` of every model exported
before, name the old paths (``speechbrain_sercl.pooling.AttentionPooling``,
``!apply:speechbrain_sercl.backbone.materialise_from_config``). They keep
working: importing an old module gives a stand-in whose attributes come
from the modules that now hold them (:data:`MOVED`), with a
``DeprecationWarning`` naming the new place; a name that is in none of
them raises an ``AttributeError`` that names them. Nothing here is
imported before an old path is used.

Example
-------
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     from speechbrain_sercl.pooling import AttentionPooling
>>> AttentionPooling.__module__
'speechbrain_sercl.method.pooling'
>>> print(caught[0].message)
speechbrain_sercl.pooling is now speechbrain_sercl.method.pooling
>>> is_old_spelling(
...     "!new:speechbrain_sercl.backbone.SSLBackbone",
...     "!new:speechbrain_sercl.method.backbone.SSLBackbone",
... )
True

Authors
 * speechbrain-sercl developers
"""

import functools
import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

__all__ = [
    "EXPORT_TARGETS",
    "MOVED",
    "install",
    "is_old_spelling",
    "spelled_as_in_0_1",
]

PACKAGE = "speechbrain_sercl"
# Old module -> the modules (under the package) that now hold its names,
# the first being its successor.
MOVED = {
    "analysis": ("reporting.analysis",),
    "backbone": (
        "method.backbone",
        "method.sources",
        "method.model_folders",
        "method.tiny",
    ),
    "brains": ("method.brains",),
    "classical": ("protocol.classical",),
    "classifier": ("method.head",),
    "cross_corpus": ("protocol.cross_corpus",),
    "demo": ("inference.demo",),
    "embedding": ("method.embedding",),
    "export": ("inference.export",),
    "feature_cache": ("method.feature_cache",),
    "hparams_trust": ("inference.hparams_trust",),
    "hub": ("inference.hub",),
    "locking": ("protocol.locking",),
    "losses": ("method.losses",),
    "overrides": ("protocol.overrides",),
    "plots": ("reporting.plots",),
    "pooling": ("method.pooling",),
    "predict": ("inference.predict",),
    "predict_io": ("inference.predict_io",),
    "pretraining": ("method.pretraining",),
    "report": ("reporting.results", "predictions", "method.registry"),
    "run_report": ("reporting.report",),
    "runner": ("protocol.runner", "config", "method.registry"),
    "sampler": ("method.sampler",),
    "schedulers": ("method.schedulers",),
    "training_log": ("reporting.training_log",),
}

# What an export of version 0.1 names -> what the current template names.
EXPORT_TARGETS = {
    f"{PACKAGE}.backbone.materialise_from_config": (
        f"{PACKAGE}.method.model_folders.materialise_from_config"
    ),
    f"{PACKAGE}.backbone.SSLBackbone": f"{PACKAGE}.method.backbone.SSLBackbone",
    f"{PACKAGE}.pooling.AttentionPooling": (
        f"{PACKAGE}.method.pooling.AttentionPooling"
    ),
    f"{PACKAGE}.embedding.KeepFeatures": (
        f"{PACKAGE}.method.embedding.KeepFeatures"
    ),
    f"{PACKAGE}.embedding.EmotionEmbedding": (
        f"{PACKAGE}.method.embedding.EmotionEmbedding"
    ),
    f"{PACKAGE}.classifier.EmotionClassifier": (
        f"{PACKAGE}.method.head.EmotionClassifier"
    ),
}


def is_old_spelling(old, new):
    """Whether the tag ``old`` is how an export of version 0.1 wrote the
    tag ``new`` (:data:`EXPORT_TARGETS`).

    The check of an untrusted ``hyperparams.yaml`` accepts these, and
    only these: an allow-list of exact paths, not a rule.

    Arguments
    ---------
    old : str
        A tag such as ``!new:speechbrain_sercl.pooling.AttentionPooling``.
    new : str
        The tag the current template has in its place.

    Returns
    -------
    bool
    """
    kind, _, path = old.rpartition(":")
    return bool(kind) and f"{kind}:{EXPORT_TARGETS.get(path)}" == new


def spelled_as_in_0_1(tag):
    """A YAML tag with the module path version 0.1 gave its target.

    Step records (:mod:`speechbrain_sercl.fingerprints`) keep 0.1's
    spelling, so that the steps an experiment of 0.1 finished are not
    taken for steps of other settings: the object behind either path is
    the same.

    Arguments
    ---------
    tag : str
        A tag such as ``!new:speechbrain_sercl.method.head.EmotionClassifier``.

    Returns
    -------
    str
        The tag with 0.1's module path where the module moved; as given
        otherwise.

    Example
    -------
    >>> spelled_as_in_0_1(
    ...     "!new:speechbrain_sercl.method.head.EmotionClassifier"
    ... )
    '!new:speechbrain_sercl.classifier.EmotionClassifier'
    >>> spelled_as_in_0_1("!name:speechbrain_sercl.config.read_config")
    '!name:speechbrain_sercl.runner.read_config'
    >>> spelled_as_in_0_1("!new:torch.nn.Linear")
    '!new:torch.nn.Linear'
    """
    kind, colon, path = tag.rpartition(":")
    module, dot, name = path.rpartition(".")
    former = _former_modules().get(module)
    return f"{kind}{colon}{PACKAGE}.{former}{dot}{name}" if former else tag


@functools.cache
def _former_modules():
    """Each module of today -> the module of 0.1 that held its names."""
    former = {}
    for old, successors in MOVED.items():
        for successor in successors:
            former.setdefault(f"{PACKAGE}.{successor}", old)
    return former


class _MovedModule(types.ModuleType):
    """An old module: its names come from its successors."""

    def __init__(self, name, successors):
        super().__init__(name)
        self._successors = [f"{PACKAGE}.{s}" for s in successors]

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        modules = [importlib.import_module(s) for s in self._successors]
        # A module's public names first: another may import the same name.
        for module in sorted(
            modules, key=lambda m: name not in getattr(m, "__all__", ())
        ):
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(
            f"{self.__name__}.{name} is gone: {self.__name__} moved to "
            f"{', '.join(self._successors)}, and none of them has {name!r}"
        )


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old modules, after every other finder failed."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, module = fullname.rpartition(".")
        if package != PACKAGE or module not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = spec.name.rpartition(".")[2]
        successors = MOVED[module]
        warnings.warn(
            f"{spec.name} is now {PACKAGE}.{successors[0]}",
            DeprecationWarning,
            stacklevel=2,
        )
        return _MovedModule(spec.name, successors)

    def exec_module(self, module):
        """Nothing to run: the names are looked up when used."""


def install():
    """Lets the old paths be imported (once per process)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
