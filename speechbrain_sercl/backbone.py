"""Building the WavLM / HuBERT speech model and its freeze policy.

The speech model comes from one of three sources:

* a Hugging Face hub id (``microsoft/wavlm-base-plus``,
  ``facebook/hubert-base-ls960``), downloaded by SpeechBrain;
* a local folder holding ``config.json``, ``preprocessor_config.json`` and
  the weights (``model.safetensors`` or ``pytorch_model.bin``);
* a named tiny configuration (:data:`TINY_MODELS`), randomly initialised
  and written to disk once, for the demo and the tests.

:class:`SSLBackbone` wraps SpeechBrain's ``WavLM`` / ``HuBERT`` lobes and
applies the freeze policy of the method:

* ``"contrastive"`` and ``"finetune"``: only the transformer encoder
  (``encoder.*``: positional convolution, layer norm and layers) trains.
  The CNN feature encoder, the feature projection and the masked-spec
  embedding are frozen. The CNN is frozen as Hugging Face's
  ``freeze_feature_encoder`` does it, so it builds no graph (SpeechBrain's
  ``freeze_feature_extractor`` only clears ``requires_grad``; in training
  mode Hugging Face then still marks the input as requiring grad and
  builds a graph through the CNN).
  Dropout, layer drop and masked-spec augmentation follow the Hugging Face
  config in training mode; ``apply_spec_augment=False`` turns the masking
  off (SpeechBrain's lobes turn it off by default, we keep the config's
  default, e.g. ``mask_time_prob=0.05`` for the base models).
* ``"classifier"``: everything is frozen, the model stays in eval mode even
  when the Brain calls ``.train()`` (no dropout, no layer drop, no masking),
  and the forward pass runs under ``torch.no_grad()``.

Padding. An utterance gets the same outputs in a padded batch as alone.
The CNN feature encoder runs on each utterance's valid samples separately
(the base models' ``feat_extract_norm="group"`` normalises each channel of
its first layer over the whole row it is given, so a padded row would
shift the features of the valid frames); waveform normalisation
(``do_normalize`` in the preprocessor config) is done there too, over the
valid samples, as Hugging Face's feature extractor does. The frame
sequences are zero-padded to the frame count of the full padded row, and
the feature projection and the transformer run as one batch with an
attention mask over the valid frames: padded frames are zeroed before the
positional convolution and never attended to (WavLM's relative position
bias depends on frame distances only). The loop over utterances skips the
padding a batched CNN call computes;
``benchmarks/bench_batch_independence.py`` measures both.

Authors
 * speechbrain-sercl contributors 2025
"""

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile

import torch
import torch.nn.functional as F
from filelock import FileLock
from speechbrain.integrations.huggingface.hubert import HuBERT
from speechbrain.integrations.huggingface.wavlm import WavLM
from speechbrain.utils.distributed import run_on_main
from torch.nn.utils.rnn import pad_sequence
from transformers import AutoConfig, AutoModel, Wav2Vec2FeatureExtractor

from speechbrain_sercl.atomic import writing_folder_atomically
from speechbrain_sercl.pretraining import pretrain_on_synthetic_speech

__all__ = [
    "PRETRAINED_TINY_MODELS",
    "PRETRAINED_TINY_SIZE",
    "STAGES",
    "TINY_MODELS",
    "SSLBackbone",
    "cache_folder",
    "encoder_parameters",
    "frame_count",
    "materialise_from_config",
    "materialise_tiny_model",
    "model_type_of",
    "resolve_source",
    "speech_model_settings",
    "trainable_parameter_names",
]

STAGES = ("contrastive", "finetune", "classifier")

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
# (speechbrain_sercl.pretraining): name -> the tiny model they start from.
# The demo's stand-in for a pre-trained WavLM. They are kept in the cache
# folder (cache_folder()), shared by every run, as a download would be.
PRETRAINED_TINY_MODELS = {
    "tiny-wavlm-pretrained": "tiny-wavlm",
    "tiny-hubert-pretrained": "tiny-hubert",
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

_LOBES = {"wavlm": WavLM, "hubert": HuBERT}
# Keys of a saved feature extractor's settings that are not arguments.
_EXTRACTOR_METADATA = ("feature_extractor_type", "processor_class")

_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _missing_files(folder):
    """Lists the files a Hugging Face speech model folder lacks."""
    missing = [
        name
        for name in ("config.json", "preprocessor_config.json")
        if not os.path.isfile(os.path.join(folder, name))
    ]
    if not any(os.path.isfile(os.path.join(folder, w)) for w in _WEIGHT_FILES):
        missing.append("model.safetensors or pytorch_model.bin")
    return missing


def _is_empty_folder(path):
    """Tells whether path is a folder with nothing in it."""
    return os.path.isdir(path) and not os.listdir(path)


def _tiny_names():
    """Every tiny model name, random and pretrained."""
    return sorted([*TINY_MODELS, *PRETRAINED_TINY_MODELS])


def _check_tiny_name(name):
    """Raises a ValueError naming the known tiny models if name is unknown."""
    if name not in _tiny_names():
        raise ValueError(
            f"Unknown tiny model {name!r}; known tiny models: "
            f"{', '.join(_tiny_names())}"
        )


def cache_folder():
    """Where models built once for every run are kept.

    ``$SERCL_CACHE``, else ``$XDG_CACHE_HOME/speechbrain_sercl``, else
    ``~/.cache/speechbrain_sercl``.

    Returns
    -------
    str

    Example
    -------
    >>> getfixture("monkeypatch").setenv("SERCL_CACHE", "/data/cache")
    >>> cache_folder()
    '/data/cache'
    """
    if os.environ.get("SERCL_CACHE"):
        return os.environ["SERCL_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "speechbrain_sercl")


def materialise_tiny_model(name, folder, seed=0):
    """Writes a tiny speech model as a local HF folder.

    A name of :data:`TINY_MODELS` is randomly initialised; a name of
    :data:`PRETRAINED_TINY_MODELS` is built at :data:`PRETRAINED_TINY_SIZE`
    and then pretrained without labels
    (:mod:`speechbrain_sercl.pretraining`, about half a minute). The folder
    gets ``config.json``, ``preprocessor_config.json`` and
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
    base = PRETRAINED_TINY_MODELS.get(name, name)
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
        )
    return _write_model_folder(
        config,
        feature_extractor,
        folder,
        seed,
        f"tiny model {name!r}",
        prepare,
    )


def materialise_from_config(config, feature_extractor, folder=None):
    """Writes a speech model folder built from its settings alone.

    An exported model (:mod:`speechbrain_sercl.export`) carries its speech
    model's Hugging Face configuration and feature-extractor settings in
    its ``hyperparams.yaml``: this builds the folder the SpeechBrain lobe
    loads, with random weights that the ``Pretrainer`` then replaces (it
    loads every key strictly), so nothing is downloaded.

    Arguments
    ---------
    config : dict
        The Hugging Face model configuration, with ``model_type``.
    feature_extractor : dict
        The ``Wav2Vec2FeatureExtractor`` settings (sampling rate,
        ``do_normalize``, ...).
    folder : str or os.PathLike, optional
        Where to write it; by default a folder named by a hash of the
        settings in the system's temporary folder, reused when complete.

    Returns
    -------
    str
        The model folder.

    Example
    -------
    >>> config = dict(TINY_MODELS["tiny-hubert"], hidden_size=16)
    >>> folder = materialise_from_config(
    ...     config, {"do_normalize": True}, getfixture("tmp_path") / "m"
    ... )
    >>> AutoConfig.from_pretrained(folder).hidden_size
    16
    """
    if folder is None:
        key = json.dumps([config, feature_extractor], sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        folder = os.path.join(
            tempfile.gettempdir(), "speechbrain_sercl", f"model-{digest}"
        )
    return _write_model_folder(config, feature_extractor, folder, 0, "model")


def speech_model_settings(source, save_path):
    """The configuration and feature-extractor settings of a speech model.

    Arguments
    ---------
    source : str or os.PathLike
        Tiny model name, local folder or hub id (see :func:`resolve_source`;
        a hub id is read from the local Hugging Face cache when offline).
    save_path : str or os.PathLike
        Folder for tiny models and downloaded hub models.

    Returns
    -------
    config : dict
        The Hugging Face configuration (``to_dict()``).
    feature_extractor : dict
        The feature-extractor settings (``to_dict()``).

    Example
    -------
    >>> config, extractor = speech_model_settings(
    ...     "tiny-hubert", getfixture("tmp_path")
    ... )
    >>> config["model_type"], extractor["do_normalize"]
    ('hubert', True)
    """
    resolved = resolve_source(source, os.fspath(save_path))
    return (
        AutoConfig.from_pretrained(resolved).to_dict(),
        Wav2Vec2FeatureExtractor.from_pretrained(resolved).to_dict(),
    )


def _write_model_folder(
    config, feature_extractor, folder, seed, what, prepare=None
):
    """Writes a model folder once: random weights, then ``prepare(model)``
    if given (see the callers)."""
    folder = os.fspath(folder)
    if os.path.isdir(folder) and not _missing_files(folder):
        return folder
    if os.path.exists(folder) and not _is_empty_folder(folder):
        raise FileExistsError(
            f"Cannot write {what} to {folder!r}: it exists, is "
            f"not empty and lacks {', '.join(_missing_files(folder))}"
        )
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    # Separate runs may share the folder: one writes, the others reuse it.
    with FileLock(f"{os.path.abspath(folder)}.lock"):
        if os.path.isdir(folder) and not _missing_files(folder):
            return folder
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModel.from_config(AutoConfig.for_model(**config))
        if prepare is not None:
            prepare(model)
        extractor = Wav2Vec2FeatureExtractor(
            **{
                key: value
                for key, value in feature_extractor.items()
                if key not in _EXTRACTOR_METADATA
            }
        )
        with writing_folder_atomically(folder) as staging:
            model.save_pretrained(staging)
            extractor.save_pretrained(staging)
    return folder


def resolve_source(source, save_path):
    """Turns a speech model source into what SpeechBrain's lobes accept.

    Arguments
    ---------
    source : str or os.PathLike
        A name in :data:`TINY_MODELS` (materialised under
        ``save_path/<name>``), a local model folder, or a Hugging Face hub
        id ``"org/name"`` (returned unchanged, downloaded later).
    save_path : str or os.PathLike
        Folder for tiny models (and the hub cache of SpeechBrain).

    Returns
    -------
    str
        A local folder or a hub id.

    Raises
    ------
    FileNotFoundError
        If a local folder lacks a required file (the error names them).
    ValueError
        If ``source`` is neither a tiny name, a folder, nor a hub id.

    Example
    -------
    >>> import os
    >>> save_path = str(getfixture("tmp_path"))
    >>> resolve_source("microsoft/wavlm-base-plus", save_path)
    'microsoft/wavlm-base-plus'
    >>> folder = resolve_source("tiny-hubert", save_path)
    >>> folder == os.path.join(save_path, "tiny-hubert")
    True
    """
    source = os.fspath(source)
    if source in PRETRAINED_TINY_MODELS:
        folder = os.path.join(
            cache_folder(), f"{source}-v{PRETRAINING_VERSION}"
        )
        run_on_main(materialise_tiny_model, args=[source, folder])
        return folder
    if source in TINY_MODELS:
        folder = os.path.join(os.fspath(save_path), source)
        # Under DDP transformers writes weights on rank 0 only: the main
        # process writes the folder, the others wait for it.
        run_on_main(materialise_tiny_model, args=[source, folder])
        return folder
    if os.path.exists(source):
        if not os.path.isdir(source):
            raise ValueError(
                f"Speech model source {source!r} is a file; expected a "
                "folder with config.json, preprocessor_config.json and "
                "the weights"
            )
        missing = _missing_files(source)
        if missing:
            raise FileNotFoundError(
                f"Speech model folder {source!r} lacks: {', '.join(missing)}"
            )
        return source
    if _HUB_ID.match(source):
        return source
    raise ValueError(
        f"Speech model source {source!r} is not a tiny model name "
        f"({', '.join(_tiny_names())}), an existing folder, nor a "
        "hub id of the form 'org/name'"
    )


def model_type_of(source_folder):
    """Tells whether a speech model is a WavLM or a HuBERT.

    Arguments
    ---------
    source_folder : str or os.PathLike
        A local model folder (its ``config.json`` is read), a tiny model
        name, or a hub id (the type is inferred from the name).

    Returns
    -------
    str
        ``"wavlm"`` or ``"hubert"``.

    Raises
    ------
    ValueError
        If the type is neither, or cannot be inferred from a hub id.

    Example
    -------
    >>> model_type_of("facebook/hubert-base-ls960")
    'hubert'
    >>> model_type_of("tiny-wavlm")
    'wavlm'
    """
    source = os.fspath(source_folder)
    config_file = os.path.join(source, "config.json")
    if source in _tiny_names():
        base = PRETRAINED_TINY_MODELS.get(source, source)
        model_type = TINY_MODELS[base]["model_type"]
    elif os.path.isfile(config_file):
        with open(config_file, encoding="utf-8") as stream:
            model_type = json.load(stream).get("model_type")
        if model_type not in _LOBES:
            raise ValueError(
                f"{config_file} has model_type {model_type!r}; expected "
                f"one of {', '.join(sorted(_LOBES))}"
            )
    else:
        found = [kind for kind in _LOBES if kind in source.lower()]
        if len(found) != 1:
            raise ValueError(
                f"Cannot tell the model type of {source!r}: no config.json "
                "there and the name does not contain exactly one of "
                f"{', '.join(sorted(_LOBES))}; pass model_type explicitly"
            )
        model_type = found[0]
    return model_type


def _valid_sample_counts(wavs, wav_lens):
    """Valid samples of each utterance, rounded as SpeechBrain does."""
    if wav_lens is None:
        return [wavs.shape[1]] * wavs.shape[0]
    return torch.round(wav_lens * wavs.shape[1]).long().tolist()


def frame_count(num_samples, config):
    """Frames the CNN makes from ``num_samples`` samples (0 if too few).

    Arguments
    ---------
    num_samples : int
        Samples of one utterance.
    config : transformers.PretrainedConfig
        The speech model's configuration (``conv_kernel``,
        ``conv_stride``).

    Returns
    -------
    int
        The number of output frames.

    Example
    -------
    >>> from transformers import WavLMConfig
    >>> frame_count(16000, WavLMConfig()), frame_count(399, WavLMConfig())
    (49, 0)
    """
    for kernel, stride in zip(
        config.conv_kernel, config.conv_stride, strict=True
    ):
        num_samples = max((num_samples - kernel) // stride + 1, 0)
    return num_samples


def _frame_mask(frames, features):
    """Boolean ``[B, T]``: True on each utterance's first frames."""
    positions = torch.arange(features.shape[1], device=features.device)
    lengths = torch.tensor(frames, device=features.device)
    return positions < lengths[:, None]


@contextlib.contextmanager
def _layer_states(layers):
    """Records the first layer's input and the output of each layer run.

    The same states Hugging Face returns as ``hidden_states``.
    """
    states = []

    def record(layer, args, output):
        if not states:
            states.append(args[0])
        states.append(output[0] if isinstance(output, tuple) else output)

    handles = [layer.register_forward_hook(record) for layer in layers]
    try:
        yield states
    finally:
        for handle in handles:
            handle.remove()


class SSLBackbone(torch.nn.Module):
    """A WavLM or HuBERT speech model with the freeze policy of a stage.

    Arguments
    ---------
    source : str or os.PathLike
        Tiny model name, local folder or hub id (see
        :func:`resolve_source`).
    save_path : str or os.PathLike
        Folder for tiny models and downloaded hub models.
    stage : str
        One of :data:`STAGES`. ``"contrastive"`` and ``"finetune"`` train
        the transformer encoder only; ``"classifier"`` freezes everything
        and keeps the model in eval mode.
    model_type : str, optional
        ``"wavlm"`` or ``"hubert"``; read from the source when None.
    output_all_hiddens : bool
        If True, return the output of the CNN projection and of every
        transformer layer, stacked as ``[L + 1, B, T, D]``.
    gradient_checkpointing : bool
        If True, turn on Hugging Face gradient checkpointing (less memory,
        one more forward pass per backward).
    apply_spec_augment : bool
        If True (the Hugging Face default), masked-spec augmentation of the
        config (``mask_time_prob``, ``mask_feature_prob``) applies in
        training mode; if False, it never applies.
    train_front_end : bool
        If True, the ``"contrastive"`` and ``"finetune"`` stages also train
        the CNN feature encoder and the feature projection. Only for a
        randomly initialised model (the demo's tiny ones): a random front
        end has nothing pre-trained to keep, and frozen it passes on too
        little for emotions. The paper's models keep it False.

    Example
    -------
    >>> backbone = SSLBackbone("tiny-wavlm", getfixture("tmp_path"))
    >>> hidden = backbone(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
    >>> hidden.shape == (2, 50, backbone.hidden_size)
    True
    >>> backbone.set_stage("classifier")
    >>> trainable_parameter_names(backbone)
    []
    """

    def __init__(
        self,
        source,
        save_path,
        stage="contrastive",
        model_type=None,
        output_all_hiddens=False,
        gradient_checkpointing=False,
        apply_spec_augment=True,
        train_front_end=False,
    ):
        super().__init__()
        save_path = os.fspath(save_path)
        resolved = resolve_source(source, save_path)
        found_type = model_type_of(resolved)
        if model_type is None:
            model_type = found_type
        elif model_type != found_type:
            raise ValueError(
                f"model_type={model_type!r} but the speech model {source!r} "
                f"is a {found_type!r}"
            )
        self.model_type = model_type
        self.output_all_hiddens = output_all_hiddens
        # The lobe loads the model; forward() runs the model's parts itself.
        self.lobe = _LOBES[model_type](
            source=resolved,
            save_path=save_path,
            apply_spec_augment=apply_spec_augment,
        )
        self.normalize_wav = self.lobe.normalize_wav
        self.train_front_end = train_front_end
        if not train_front_end:
            # HubertModel has no freeze_feature_encoder; both have this.
            self.hf_model.feature_extractor._freeze_parameters()
        if gradient_checkpointing:
            self.hf_model.activation_checkpointing_enable()
        self.set_stage(stage)

    @property
    def hf_model(self):
        """The Hugging Face ``WavLMModel`` or ``HubertModel``."""
        return self.lobe.model

    @property
    def hidden_size(self):
        """The size D of each frame's hidden state."""
        return self.hf_model.config.hidden_size

    @property
    def num_layers(self):
        """The number L of transformer layers."""
        return self.hf_model.config.num_hidden_layers

    def set_stage(self, stage):
        """Applies the freeze policy of a stage.

        Only ``"classifier"`` changes the mode (to eval, for good); after
        switching back to another stage, call ``.train()`` as usual.

        Arguments
        ---------
        stage : str
            One of :data:`STAGES`.

        Raises
        ------
        ValueError
            If ``stage`` is not in :data:`STAGES`.
        """
        if stage not in STAGES:
            raise ValueError(
                f"Unknown stage {stage!r}; expected one of {', '.join(STAGES)}"
            )
        self.stage = stage
        for parameter in self.hf_model.parameters():
            parameter.requires_grad = False
        if stage == "classifier":
            self.eval()
        else:
            for module in self._trained_parts():
                for parameter in module.parameters():
                    parameter.requires_grad = True

    def _trained_parts(self):
        """The parts of the model the contrastive and finetune stages
        train: the transformer encoder (and the front end, if asked)."""
        model = self.hf_model
        if self.train_front_end:
            return [
                model.feature_extractor,
                model.feature_projection,
                model.encoder,
            ]
        return [model.encoder]

    def train(self, mode=True):
        """Sets the mode, except that the classifier stage stays in eval.

        Arguments
        ---------
        mode : bool
            True for training mode.

        Returns
        -------
        SSLBackbone
            self
        """
        return super().train(mode and self.stage != "classifier")

    def forward(self, wavs, wav_lens=None):
        """Encodes a batch of 16 kHz waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms ``[B, S]``, zero-padded.
        wav_lens : torch.Tensor, optional
            Relative lengths ``[B]`` in (0, 1]; None means no padding.

        Returns
        -------
        torch.Tensor
            Last-layer hidden states ``[B, T, D]``, or every layer's
            ``[L + 1, B, T, D]`` with ``output_all_hiddens``. ``T`` is the
            CNN's frame count for ``S`` samples; each utterance's first
            frames (as many as the CNN makes from its valid samples) do
            not depend on the rest of the batch, the others are padding.

        Raises
        ------
        ValueError
            If ``wavs`` is not two-dimensional, or an utterance is too
            short for one frame of the CNN.
        RuntimeError
            If layer drop skipped a layer while all layers were requested.
        """
        if wavs.dim() != 2:
            raise ValueError(
                f"SSLBackbone expects waveforms [batch, samples], got shape "
                f"{tuple(wavs.shape)}"
            )
        counts = _valid_sample_counts(wavs, wav_lens)
        frames = self._frame_counts(counts)
        frozen = self.stage == "classifier"
        with torch.no_grad() if frozen else contextlib.nullcontext():
            features = self._padded_features(wavs, counts)
            hidden = self._encode(features, _frame_mask(frames, features))
        if self.output_all_hiddens and hidden.shape[0] != self.num_layers + 1:
            raise RuntimeError(
                f"Got {hidden.shape[0]} hidden states instead of "
                f"{self.num_layers + 1}: layer drop (config.layerdrop="
                f"{self.hf_model.config.layerdrop}) skipped layers; use "
                "output_all_hiddens in eval mode or without layer drop"
            )
        return hidden

    def frame_lengths(self, wavs, wav_lens=None):
        """Relative lengths, in frames, of each utterance's valid outputs.

        What the pooling needs: ``round(length * T)`` gives back exactly
        the frames the CNN made from each utterance's valid samples, which
        a relative waveform length does not always do (0.27 s padded to
        2 s would count one padded frame).

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms ``[B, S]``, zero-padded (as given to ``forward``).
        wav_lens : torch.Tensor, optional
            Relative lengths ``[B]`` in (0, 1]; None means no padding.

        Returns
        -------
        torch.Tensor
            ``[B]``: valid frames of each utterance / ``T``.

        Example
        -------
        >>> backbone = SSLBackbone("tiny-wavlm", getfixture("tmp_path"))
        >>> wavs = torch.zeros(2, 32000)  # 2 s: 100 frames
        >>> backbone.frame_lengths(wavs, torch.tensor([1.0, 0.135]))
        tensor([1.0000, 0.1300])
        """
        frames = self._frame_counts(_valid_sample_counts(wavs, wav_lens))
        total = frame_count(wavs.shape[1], self.hf_model.config)
        return torch.tensor(frames, device=wavs.device) / total

    def _frame_counts(self, counts):
        """CNN frames of each utterance; a ValueError if one has none."""
        frames = [frame_count(n, self.hf_model.config) for n in counts]
        for index, (count, frame) in enumerate(
            zip(counts, frames, strict=True)
        ):
            if frame < 1:
                raise ValueError(
                    f"SSLBackbone: utterance {index} has {count} valid "
                    "samples, too few for one frame of the CNN"
                )
        return frames

    def _padded_features(self, wavs, counts):
        """CNN features ``[B, T, C]``, each utterance's computed alone.

        Zero-padded to the frame count ``T`` of the whole padded row (what
        the batched CNN gives), so relative lengths keep their meaning.
        """
        features = pad_sequence(
            [
                self._utterance_features(wav[:count])
                for wav, count in zip(wavs, counts, strict=True)
            ],
            batch_first=True,
        )
        total = frame_count(wavs.shape[1], self.hf_model.config)
        return F.pad(features, (0, 0, 0, total - features.shape[1]))

    def _utterance_features(self, wav):
        """CNN features ``[T_i, C]`` of one utterance's valid samples."""
        if self.normalize_wav:
            wav = F.layer_norm(wav, wav.shape)
        return self.hf_model.feature_extractor(wav[None])[0].T

    def _encode(self, features, frame_mask):
        """Feature projection, time masking and transformer, as HF does.

        Hugging Face's ``forward`` after the CNN, given the frame-level
        attention mask it derives from a sample-level one. Time masking
        uses the model's own (private) ``_mask_hidden_states``, so the
        config's masking settings and ``apply_spec_augment`` still hold.
        """
        model = self.hf_model
        hidden = model.feature_projection(features)
        if isinstance(hidden, tuple):  # WavLM adds the normalised features
            hidden = hidden[0]
        hidden = model._mask_hidden_states(hidden, attention_mask=frame_mask)
        if not self.output_all_hiddens:
            return model.encoder(hidden, frame_mask).last_hidden_state
        with _layer_states(model.encoder.layers) as states:
            model.encoder(hidden, frame_mask)
        return torch.stack(states)


def trainable_parameter_names(module):
    """Lists the names of the parameters that require grad, sorted.

    Arguments
    ---------
    module : torch.nn.Module
        Any module.

    Returns
    -------
    list of str
        The sorted names.

    Example
    -------
    >>> layer = torch.nn.Linear(2, 2)
    >>> _ = layer.bias.requires_grad_(False)
    >>> trainable_parameter_names(layer)
    ['weight']
    """
    return sorted(
        name
        for name, parameter in module.named_parameters()
        if parameter.requires_grad
    )


def encoder_parameters(backbone):
    """The trainable parameters of the transformer encoder.

    Meant for an optimizer parameter group with its own learning rate;
    empty in the ``"classifier"`` stage.

    Arguments
    ---------
    backbone : SSLBackbone
        The speech model.

    Returns
    -------
    list of torch.nn.Parameter
        The encoder parameters that require grad.

    Example
    -------
    >>> backbone = SSLBackbone("tiny-hubert", getfixture("tmp_path"))
    >>> params = encoder_parameters(backbone)
    >>> len(params) == len(trainable_parameter_names(backbone))
    True
    """
    return [
        parameter
        for parameter in backbone.hf_model.encoder.parameters()
        if parameter.requires_grad
    ]
