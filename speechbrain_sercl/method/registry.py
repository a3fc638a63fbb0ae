"""The methods: every step a run trains or tests, in one table.

Each :class:`Method` says how a step is made (its recipe, its shipped
YAML, its Brain), what it is called in tables and model cards, and what
the protocol does with it (tested on its corpus, tested across corpora,
exported). The step folders are named by :attr:`Method.name`
(:mod:`speechbrain_sercl.layout`). The other modules ask this table
(:func:`method_names`) instead of keeping their own lists.

Example
-------
>>> method_names(per_corpus=True)
('classifier', 'finetune', 'classical')
>>> method_names(exported=True)
('classifier', 'finetune')
>>> METHODS["finetune"].display_name
'FT baseline'

Authors
 * speechbrain-sercl developers
"""

from importlib import resources
from typing import NamedTuple

from speechbrain_sercl import layout

__all__ = ["METHODS", "Method", "method_names", "recipe_path"]


class Method(NamedTuple):
    """One step of a run.

    Attributes
    ----------
    name : str
        The key in YAMLs and on the command line, and the step folder.
    display_name : str
        Its name in results tables and model cards.
    recipe : str or None
        Its script under ``recipes/CrossCorpus``; None if it runs in the
        runner's process.
    hparams : str or None
        Its shipped YAML (:func:`speechbrain_sercl.config.shipped_hparams`);
        None for stage 1, whose YAML is the experiment's own.
    brain : str or None
        The Brain of :mod:`speechbrain_sercl.method.brains` its YAML names.
    per_corpus : bool
        Trained and tested once per corpus of a run (else once per run).
    tested : bool
        Tested on its corpus's test part: ``predictions.csv``, a row of
        the results tables.
    cross_corpus : bool
        Also tested on the other corpora's test parts.
    exported : bool
        ``sercl export`` makes a SpeechBrain model of it.
    description : str
        What it trained, for the model card.
    final_training : str
        What its final-run step was trained on (``{count}`` utterances of
        ``{corpus}``), for the model card.
    """

    name: str
    display_name: str
    recipe: str | None
    hparams: str | None
    brain: str | None
    per_corpus: bool
    tested: bool
    cross_corpus: bool
    exported: bool
    description: str = ""
    final_training: str = ""

    @property
    def runs_recipe(self):
        """Whether a recipe script trains it (in a process of its own)."""
        return self.recipe is not None


METHODS = {
    method.name: method
    for method in (
        Method(
            name=layout.STAGE1,
            display_name="two-stage contrastive (stage 1)",
            recipe="train_contrastive.py",
            hparams=None,
            brain="ContrastiveBrain",
            per_corpus=False,
            tested=False,
            cross_corpus=False,
            exported=False,
        ),
        Method(
            name="classifier",
            display_name="two-stage contrastive (stage 2)",
            recipe="train_classifier.py",
            hparams="classifier",
            brain="ClassifierBrain",
            per_corpus=True,
            tested=True,
            cross_corpus=True,
            exported=True,
            description=(
                "stage 1 fine-tuned the transformer and a pooling layer "
                "with supervised contrastive learning on batches drawn "
                "across corpora (InfoNCE + cosine margin loss); stage 2 "
                "trained this pooling and classifier with cross-entropy on "
                "the frozen speech model."
            ),
            final_training=(
                "stage 1 on every utterance of every corpus of its "
                "experiment, then stage 2 on all {count} utterances of "
                "{corpus}"
            ),
        ),
        Method(
            name="finetune",
            display_name="FT baseline",
            recipe="train_classifier.py",
            hparams="finetune",
            brain="FineTuneBrain",
            per_corpus=True,
            tested=True,
            cross_corpus=True,
            exported=True,
            description=(
                "the FT baseline: the transformer, the pooling and the "
                "classifier fine-tuned together with cross-entropy on this "
                "corpus."
            ),
            final_training="fine-tuned on all {count} utterances of {corpus}",
        ),
        Method(
            name=layout.CLASSICAL,
            display_name="MFCC statistics + logistic regression (floor)",
            recipe=None,
            hparams=None,
            brain=None,
            per_corpus=True,
            tested=True,
            cross_corpus=False,
            exported=False,
        ),
    )
}


def method_names(**wanted):
    """The names of the methods with the given attributes, in table order.

    Arguments
    ---------
    **wanted
        Attribute values of :class:`Method`, e.g. ``exported=True``.

    Returns
    -------
    tuple of str

    Example
    -------
    >>> method_names(per_corpus=False)
    ('contrastive',)
    >>> method_names(recipe=None)
    ('classical',)
    """
    return tuple(
        method.name
        for method in METHODS.values()
        if all(getattr(method, key) == value for key, value in wanted.items())
    )


def recipe_path(method):
    """The recipe script of a method, inside the installed package.

    Arguments
    ---------
    method : str
        A name of :data:`METHODS` that has a recipe.

    Returns
    -------
    str
        The script's path.

    Example
    -------
    >>> import os
    >>> os.path.basename(recipe_path("finetune"))
    'train_classifier.py'
    """
    recipes = resources.files("speechbrain_sercl") / "recipes"
    return str(recipes / "CrossCorpus" / METHODS[method].recipe)
