"""The WavLM / HuBERT speech model and its freeze policy.

:class:`SSLBackbone` loads a speech model from any source of
:mod:`speechbrain_sercl.method.sources` (a hub id, a local folder, a tiny model
name), wraps SpeechBrain's ``WavLM`` / ``HuBERT`` lobes and
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
Outside training on a CPU the model runs on each utterance's valid
samples alone, and the outputs are zero-padded to the frame count of the
whole padded row: bit for bit what the utterance gets alone, and faster
than the batch (a padded batch's large intermediate tensors cost more
memory traffic than batching saves there; ``benchmarks/inference.py``,
``benchmarks/profile_inference.py``). In training, and on a GPU, the
batch runs as one: the CNN feature encoder on each utterance's valid
samples only (the base models' ``feat_extract_norm="group"`` normalises
each channel of its first layer over the whole row it is given, so a
padded row would shift the features of the valid frames), utterances of
the same valid length (training crops) sharing one CNN call; the frame
sequences zero-padded to the frame count of the full padded row; then the
feature projection and the transformer as one batch with an attention
mask over the valid frames (padded frames are zeroed before the
positional convolution and never attended to; WavLM's relative position
bias depends on frame distances only, and its padding mask reaches
PyTorch as floats, :mod:`speechbrain_sercl.method.wavlm_attention`).
Waveform normalisation (``do_normalize`` in the preprocessor config) is
done over the valid samples, as Hugging Face's feature extractor does.

Authors
 * speechbrain-sercl contributors 2025
"""

import contextlib
import os

import torch
import torch.nn.functional as F
from speechbrain.integrations.huggingface.hubert import HuBERT
from speechbrain.integrations.huggingface.wavlm import WavLM
from torch.nn.utils.rnn import pad_sequence

from speechbrain_sercl.method.sources import model_type_of, resolve_source
from speechbrain_sercl.method.wavlm_attention import use_float_padding_mask

__all__ = [
    "STAGES",
    "SSLBackbone",
    "frame_count",
]

STAGES = ("contrastive", "finetune", "classifier")

_LOBES = {"wavlm": WavLM, "hubert": HuBERT}


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


def _rows_by_length(counts):
    """``{valid samples: [rows with that many]}``, in order of first row.

    Example
    -------
    >>> _rows_by_length([5, 3, 5, 5])
    {5: [0, 2, 3], 3: [1]}
    """
    rows = {}
    for index, count in enumerate(counts):
        rows.setdefault(count, []).append(index)
    return rows


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
        the CNN feature encoder and the feature projection. For a randomly
        initialised model (the random tiny ones, or a configuration
        without weights): a random front end has nothing pre-trained to
        keep, and frozen it passes on too little for emotions
        (docs/design.md). No shipped YAML sets it: the paper's models and
        the demo's pretrained tiny model keep it False.

    Example
    -------
    >>> backbone = SSLBackbone("tiny-wavlm", getfixture("tmp_path"))
    >>> hidden = backbone(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
    >>> hidden.shape == (2, 50, backbone.hidden_size)
    True
    >>> backbone.set_stage("classifier")
    >>> [name for name, p in backbone.named_parameters() if p.requires_grad]
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
        if model_type == "wavlm":
            use_float_padding_mask(self.hf_model)
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
            if self.training or wavs.device.type != "cpu":
                features = self._padded_features(wavs, counts)
                hidden = self._encode(features, _frame_mask(frames, features))
            else:
                hidden = self._encode_each(wavs, counts)
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

        Utterances of the same valid length share one CNN call (each row
        of it sees only that utterance's samples). Zero-padded to the
        frame count ``T`` of the whole padded row (what the batched CNN
        gives), so relative lengths keep their meaning.
        """
        rows = [None] * len(counts)
        for count, indices in _rows_by_length(counts).items():
            features = self._valid_features(wavs[indices, :count])
            for index, row in zip(indices, features, strict=True):
                rows[index] = row
        features = pad_sequence(rows, batch_first=True)
        total = frame_count(wavs.shape[1], self.hf_model.config)
        return F.pad(features, (0, 0, 0, total - features.shape[1]))

    def _valid_features(self, wavs):
        """CNN features ``[N, T_n, C]`` of utterances with no padding."""
        if self.normalize_wav:
            wavs = F.layer_norm(wavs, wavs.shape[1:])
        return self.hf_model.feature_extractor(wavs).transpose(1, 2)

    def _encode_each(self, wavs, counts):
        """The whole model on each utterance's valid samples alone, the
        outputs zero-padded to the frame count of the padded row.

        Outside training on a CPU: there a padded batch's large tensors
        (``[B, T, 3072]`` in the feed-forward layers, ``[B x heads, T, T]``
        in the attention) cost more memory traffic than the batch saves
        (``benchmarks/profile_inference.py``), and each output is then
        exactly the one the utterance gets alone.
        """
        total = frame_count(wavs.shape[1], self.hf_model.config)
        rows = []
        for wav, count in zip(wavs, counts, strict=True):
            features = self._valid_features(wav[None, :count]).contiguous()
            hidden = self._encode(features, None)
            rows.append(F.pad(hidden, (0, 0, 0, total - hidden.shape[-2])))
        return torch.cat(rows, dim=-3)

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
