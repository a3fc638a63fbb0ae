"""Speech models for the benchmarks: tiny, or base size with random weights.

``tiny`` is the package's ``tiny-wavlm`` / ``tiny-hubert``. ``base`` is
the architecture of ``microsoft/wavlm-base-plus`` /
``facebook/hubert-base-ls960`` (Hugging Face's default ``WavLMConfig`` /
``HubertConfig``: 12 layers of 768, 7 convolutions) with random weights,
built locally by
:func:`speechbrain_sercl.method.model_folders.materialise_from_config` (no
download; timing and memory do not depend on the weights). The folder is named
by a hash of the settings in the system's temporary folder and reused by later
runs.
"""

from transformers import HubertConfig, WavLMConfig

from speechbrain_sercl.method.model_folders import materialise_from_config

SIZES = ("tiny", "base")
KINDS = ("wavlm", "hubert")

_BASE_CONFIGS = {"wavlm": WavLMConfig, "hubert": HubertConfig}
# wavlm-base-plus feeds the raw waveform, hubert-base-ls960 a normalised one.
_NORMALISES = {"wavlm": False, "hubert": True}


def speech_model_source(size, kind="wavlm"):
    """The ``SSLBackbone`` source of a speech model of this size.

    Arguments
    ---------
    size : str
        ``"tiny"`` or ``"base"``.
    kind : str
        ``"wavlm"`` or ``"hubert"``.

    Returns
    -------
    str
        A tiny model name or a local model folder.
    """
    if size not in SIZES or kind not in KINDS:
        raise ValueError(f"size must be in {SIZES} and kind in {KINDS}")
    if size == "tiny":
        return f"tiny-{kind}"
    feature_extractor = {
        "do_normalize": _NORMALISES[kind],
        "return_attention_mask": True,
        "sampling_rate": 16000,
        "feature_size": 1,
        "padding_value": 0.0,
    }
    return materialise_from_config(
        _BASE_CONFIGS[kind]().to_dict(), feature_extractor
    )
