"""Utterance embeddings: the speech model, then attention pooling over each
utterance's valid frames.

:func:`pool_utterances` is what every Brain does with a batch, and
:class:`EmotionEmbedding` wraps it as the ``embedding_model`` that
SpeechBrain's ``EncoderClassifier`` calls with waveforms and relative
lengths, so an exported model computes exactly what the training recipes
computed. The lengths reach both the speech model (its CNN runs on each
utterance's valid samples, its transformer masks the padding) and the
pooling (over :meth:`SSLBackbone.frame_lengths`), so an utterance gets the
same embedding in a padded batch as alone.

Example
-------
>>> import torch
>>> from speechbrain_sercl.method.backbone import SSLBackbone
>>> from speechbrain_sercl.method.pooling import AttentionPooling
>>> ssl = SSLBackbone("tiny-wavlm", getfixture("tmp_path"), "classifier")
>>> embedding = EmotionEmbedding(ssl, AttentionPooling(ssl.hidden_size))
>>> wavs = torch.randn(2, 16000)
>>> embedding(wavs, torch.tensor([1.0, 0.5])).shape
torch.Size([2, 1, 32])
"""

import torch

__all__ = ["EmotionEmbedding", "KeepFeatures", "pool_utterances"]


def pool_utterances(ssl, pooling, wavs, wav_lens):
    """Pooled embeddings of a padded batch of waveforms.

    Arguments
    ---------
    ssl : SSLBackbone
        The speech model, possibly wrapped by DDP (the wrapper runs it, the
        wrapped model's ``frame_lengths`` gives the frame counts).
    pooling : torch.nn.Module
        Attention pooling taking hidden states and relative frame lengths.
    wavs : torch.Tensor
        Waveforms ``[B, samples]``.
    wav_lens : torch.Tensor
        Relative lengths ``[B]``.

    Returns
    -------
    torch.Tensor
        ``[B, D]``.
    """
    hidden_states = ssl(wavs, wav_lens)
    backbone = getattr(ssl, "module", ssl)
    return pooling(hidden_states, backbone.frame_lengths(wavs, wav_lens))


class EmotionEmbedding(torch.nn.Module):
    """The ``embedding_model`` of an exported emotion classifier.

    Arguments
    ---------
    ssl : SSLBackbone
        The speech model.
    pooling : torch.nn.Module
        The attention pooling that stage 2 (or FT) trained.
    """

    def __init__(self, ssl, pooling):
        super().__init__()
        self.ssl = ssl
        self.pooling = pooling

    def forward(self, wavs, wav_lens=None):
        """Embed a padded batch of 16 kHz waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]``.
        wav_lens : torch.Tensor, optional
            Relative lengths ``[B]``; None means all full length.

        Returns
        -------
        torch.Tensor
            ``[B, 1, D]``, SpeechBrain's embedding shape.
        """
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0], device=wavs.device)
        return pool_utterances(self.ssl, self.pooling, wavs, wav_lens)[:, None]


class KeepFeatures(torch.nn.Module):
    """The ``mean_var_norm`` step of ``EncoderClassifier``, left empty.

    ``EncoderClassifier.encode_batch`` normalises features between
    ``compute_features`` and ``embedding_model``. Here the features are the
    waveform, which the speech model normalises itself over each
    utterance's valid samples when its feature extractor asks for it.

    Example
    -------
    >>> features = torch.randn(2, 5)
    >>> KeepFeatures()(features, torch.ones(2)) is features
    True
    """

    def forward(self, features, lengths=None):
        """Return ``features`` unchanged (``lengths`` is not needed)."""
        return features
