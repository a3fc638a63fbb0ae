"""A tiny inference folder of the shape ``sercl export`` writes, in seconds.

The folder holds what :func:`speechbrain_sercl.inference.export.export_step`
writes (its ``hyperparams.yaml`` comes from the same template, filled by the
same function), with a tiny random WavLM instead of trained weights, so that
loading and prediction can be tested without training anything. The
integration tests export a trained step for real.
"""

import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.encoder import CategoricalEncoder

from speechbrain_sercl.inference.export import inference_hparams
from speechbrain_sercl.method.sources import speech_model_settings

CLASSIFIER_HIDDEN_SIZE = 16
WEIGHTS = ("ssl", "pooling", "classifier")


def write_tiny_export(folder, classes, speech_models, extra_yaml=""):
    """Write a random tiny inference folder; return its path.

    Arguments
    ---------
    folder : pathlib.Path
        The folder to write (created).
    classes : list of str
        The emotions, in index order.
    speech_models : pathlib.Path
        Where the tiny speech model is materialised (shareable).
    extra_yaml : str
        Appended to ``hyperparams.yaml`` (hostile cases).

    Returns
    -------
    pathlib.Path
        ``folder``.
    """
    config, extractor = speech_model_settings("tiny-wavlm", speech_models)
    text = inference_hparams(
        config, extractor, len(classes), CLASSIFIER_HIDDEN_SIZE
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyperparams.yaml").write_text(text + extra_yaml)
    torch.manual_seed(0)
    modules = load_hyperpyyaml(text)
    for name in WEIGHTS:
        torch.save(modules[name].state_dict(), folder / f"{name}.ckpt")
    encoder = CategoricalEncoder()
    encoder.update_from_iterable(classes)
    encoder.save(folder / "label_encoder.ckpt")
    (folder / "README.md").write_text("A tiny random model for tests.\n")
    return folder
