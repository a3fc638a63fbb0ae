"""Brains built in-process from the shipped YAMLs, on the tiny model.

Import from a test module in ``tests/unittests`` with
``from brain_fixtures import load_brain``.
"""

import importlib.util

from hyperpyyaml import load_hyperpyyaml

from speechbrain_sercl.protocol.runner import recipe_path

__all__ = ["load_brain", "load_recipe"]


def load_brain(yaml_path, brain_class, tmp_path, extra=None):
    """A Brain of ``brain_class`` from a YAML with the tiny WavLM.

    Arguments
    ---------
    yaml_path : str
        The YAML (e.g. ``hparams/finetune.yaml``).
    brain_class : type
        The Brain to build.
    tmp_path : pathlib.Path
        Where the tiny model and the experiment go.
    extra : dict, optional
        More overrides (the YAML's placeholders).

    Returns
    -------
    brain : EmotionBrain
        The Brain, its optimizer made.
    hparams : dict
        The loaded YAML.
    """
    overrides = {
        "ssl_source": "tiny-wavlm",
        "hidden_size": 32,
        "pretrained_folder": str(tmp_path / "pretrained"),
        "experiment_folder": str(tmp_path / "experiment"),
        **(extra or {}),
    }
    with open(yaml_path, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    brain = brain_class(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        checkpointer=None,
    )
    brain.init_optimizers()
    return brain, hparams


def load_recipe(method):
    """A recipe script of the package as a module (its main does not run).

    Arguments
    ---------
    method : str
        ``contrastive``, ``classifier`` or ``finetune``.

    Returns
    -------
    module
        The script, for its data functions (``dataio_prep``, ...).
    """
    spec = importlib.util.spec_from_file_location(
        f"recipe_{method}", recipe_path(method)
    )
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe
