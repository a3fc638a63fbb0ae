"""The tiny speech models of the demo and the tests.

Named configurations of a WavLM and a HuBERT small enough for two CPU
cores (:data:`TINY_MODELS`, randomly initialised) and the demo's stand-in
for a pre-trained model (:data:`PRETRAINED_TINY_MODELS`: twice as wide,
pretrained once without labels on synthetic speech by
:mod:`speechbrain_sercl.method.pretraining`). A name is a speech model source
like a hub id (:func:`speechbrain_sercl.method.sources.resolve_source`).

Authors
 * speechbrain-sercl contributors 2025
"""

import functools

from speechbrain_sercl.method.model_folders import write_model_folder
from speechbrain_sercl.method.pretraining import pretrain_on_synthetic_speech

__all__ = [
    "PRETRAINED_TINY_MODELS",
    "PRETRAINED_TINY_SIZE",
    "PRETRAINING_VERSION",
    "TINY_MODELS",
    "materialise_tiny_model",
    "tiny_model_names",
]

_TINY_COMMON = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    # Three convolutions with a total stride of 320 samples: 50 frames per
    # second at 16 kHz, as in the base models (7 convolutions there).
    "conv_dim": (32, 32, 32),
    "conv_kernel": (10, 8, 4),
    "conv_stride": (5, 8, 8),
    "conv_bias": False,
    "feat_extract_norm": "group",
    "do_stable_layer_norm": False,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "feat_proj_dropout": 0.1,
    # No layer drop: dropping one of two layers halves the model, and the
    # per-layer outputs keep a fixed count in training mode.
    "layerdrop": 0.0,
    "mask_time_prob": 0.05,
    # Masked spans of 4 frames (10 in the base models) suit short clips.
    "mask_time_length": 4,
}

TINY_MODELS = {
    "tiny-wavlm": {"model_type": "wavlm", **_TINY_COMMON},
    "tiny-hubert": {"model_type": "hubert", **_TINY_COMMON},
}

# Tiny models pretrained once without labels on synthetic speech
# (speechbrain_sercl.method.pretraining): name -> (the tiny model they start
# from, the speech sources they learn from, the optimiser steps). The first
# two are the demo's stand-ins for a pre-trained WavLM and HuBERT, learnt
# from the formant synthesiser's speech: on the formant corpora they clear
# the classical floor, which the mixture model did not on the CASIA-like
# one (docs/demo.md). The mixture (both sources) and the espeak-ng model
# are for the espeak-ng corpora and the cross-synthesiser check. They are
# kept in the cache folder (cache_folder()), shared by every run, as a
# download would be.
BOTH_SOURCES = ("synthetic", "espeak")
PRETRAINED_TINY_MODELS = {
    "tiny-wavlm-pretrained": ("tiny-wavlm", ("synthetic",), 400),
    "tiny-hubert-pretrained": ("tiny-hubert", ("synthetic",), 400),
    "tiny-wavlm-pretrained-mixture": ("tiny-wavlm", BOTH_SOURCES, 800),
    "tiny-wavlm-pretrained-espeak": ("tiny-wavlm", ("espeak",), 800),
}
# Twice as wide as the random tiny models: at hidden size 32 the pretrained
# features stayed below MFCC statistics on the demo corpora (docs/demo.md).
PRETRAINED_TINY_SIZE = {"hidden_size": 64, "intermediate_size": 128}
PRETRAINING_VERSION = 3  # bump when the pretraining changes

# Preprocessor settings mirror microsoft/wavlm-base-plus (raw waveform) and
# facebook/hubert-base-ls960 (zero-mean unit-variance waveform).
_TINY_PREPROCESSORS = {
    "tiny-wavlm": {"do_normalize": False, "return_attention_mask": True},
    "tiny-hubert": {"do_normalize": True, "return_attention_mask": False},
}


def tiny_model_names():
    """Every tiny model name, random and pretrained.

    Example
    -------
    >>> tiny_model_names()[:3]
    ['tiny-hubert', 'tiny-hubert-pretrained', 'tiny-wavlm']
    """
    return sorted([*TINY_MODELS, *PRETRAINED_TINY_MODELS])


def _check_tiny_name(name):
    """Raises a ValueError naming the known tiny models if name is unknown."""
    if name not in tiny_model_names():
        raise ValueError(
            f"Unknown tiny model {name!r}; known tiny models: "
            f"{', '.join(tiny_model_names())}"
        )


def materialise_tiny_model(name, folder, seed=0):
    """Writes a tiny speech model as a local HF folder.

    A name of :data:`TINY_MODELS` is randomly initialised; a name of
    :data:`PRETRAINED_TINY_MODELS` is built at :data:`PRETRAINED_TINY_SIZE`
    and then pretrained without labels
    (:mod:`speechbrain_sercl.method.pretraining`, one to two minutes). The
    folder gets ``config.json``, ``preprocessor_config.json`` and
    ``model.safetensors``. The weights depend only on ``name`` and ``seed``
    (the global random state is left untouched). A folder that is already
    complete is reused as it is. The files are written to a temporary
    folder and moved into place, so concurrent processes never read a
    partial model.

    Arguments
    ---------
    name : str
        A key of :data:`TINY_MODELS` or :data:`PRETRAINED_TINY_MODELS`.
    folder : str or os.PathLike
        Where to write the model.
    seed : int
        Seed of the random initialisation.

    Returns
    -------
    str
        The path of the model folder.

    Raises
    ------
    ValueError
        If ``name`` is not a known tiny model.
    FileExistsError
        If ``folder`` holds other files but not a complete model.

    Example
    -------
    >>> import os
    >>> folder = os.path.join(getfixture("tmp_path"), "tiny-wavlm")
    >>> path = materialise_tiny_model("tiny-wavlm", folder)
    >>> sorted(os.listdir(path))
    ['config.json', 'model.safetensors', 'preprocessor_config.json']
    """
    _check_tiny_name(name)
    base, speech, steps = PRETRAINED_TINY_MODELS.get(name, (name, None, 0))
    feature_extractor = {
        "feature_size": 1,
        "sampling_rate": 16000,
        "padding_value": 0.0,
        **_TINY_PREPROCESSORS[base],
    }
    config, prepare = TINY_MODELS[base], None
    if name in PRETRAINED_TINY_MODELS:
        config = {**config, **PRETRAINED_TINY_SIZE}
        prepare = functools.partial(
            pretrain_on_synthetic_speech,
            normalize_wav=feature_extractor["do_normalize"],
            seed=seed,
            speech=speech,
            steps=steps,
        )
    return write_model_folder(
        config,
        feature_extractor,
        folder,
        seed,
        f"tiny model {name!r}",
        prepare,
    )
