"""Label-free pretraining of the tiny demo models on synthetic speech.

The method fine-tunes a *pre-trained* self-supervised speech model; the
embedded demo cannot download one, and a randomly initialised tiny model
passes on too little for emotions through its frozen feature encoder (a
logistic regression on its pooled frame features scored 38 % / 61 % UA on
the demo's CASIA-like / IEMOCAP-like fold 0, against 81 % / 86 % for MFCC
statistics). So the ``tiny-*-pretrained`` models of
:mod:`speechbrain_sercl.method.backbone` are pretrained once, without labels,
the way DistilHuBERT learns from a teacher: each frame of the transformer's
output regresses, through a linear head that is then thrown away, the
standardised 80-band log-mel spectrum of a 50 ms window centred on the
frame (hop 320 samples; the window is long enough to resolve the
harmonics, and so the pitch), on synthetic speech of random voices and
random mixtures of the emotion profiles, none of it in the demo corpora:
by default a mixture of the two speech sources, the project's formant
synthesiser (:func:`speechbrain_sercl.data.synthetic.unlabelled_utterances`)
and espeak-ng speaking pseudo-words in 32 languages
(:func:`speechbrain_sercl.data.espeak.unlabelled_espeak_utterances`). The
model's masked-time augmentation is on, so some frames are predicted from
their context. It takes about two minutes on two CPU cores, once.

Example
-------
>>> import torch
>>> from transformers import AutoConfig, AutoModel
>>> from speechbrain_sercl.method.tiny import TINY_MODELS
>>> model = AutoModel.from_config(
...     AutoConfig.for_model(**TINY_MODELS["tiny-wavlm"])
... )
>>> losses = pretrain_on_synthetic_speech(
...     model, steps=2, utterances=4, batch_size=4, progress=False
... )
>>> len(losses)
2
"""

import numpy as np
import torch
import torchaudio
from tqdm import tqdm

from speechbrain_sercl.data.espeak import unlabelled_espeak_utterances
from speechbrain_sercl.data.synthetic import unlabelled_utterances

__all__ = [
    "UNLABELLED_SPEECH",
    "log_mel_targets",
    "pretrain_on_synthetic_speech",
    "unlabelled_speech",
]

# Label-free speech of each source: (count, seconds, sample_rate, seed) ->
# [count, samples].
UNLABELLED_SPEECH = {
    "synthetic": unlabelled_utterances,
    "espeak": unlabelled_espeak_utterances,
}

SAMPLE_RATE = 16000
N_MELS = 80
HOP = 320  # one frame of the speech model
FRAME = 400  # the base models' receptive field: what a frame stands for
WINDOW = 800  # centred on the frame: resolves harmonics 20 Hz apart


def log_mel_targets(wavs):
    """Standardised log-mel frames of a batch of 16 kHz waveforms.

    Arguments
    ---------
    wavs : torch.Tensor
        ``[B, samples]``.

    Returns
    -------
    torch.Tensor
        ``[B, frames, N_MELS]``: frame ``t`` is the ``WINDOW`` samples
        centred on samples ``[t * HOP, t * HOP + FRAME)`` (zero-padded at
        the ends), so there are as many frames as the base models' CNN
        gives; each mel band has zero mean and unit variance over the
        batch.

    Example
    -------
    >>> targets = log_mel_targets(torch.randn(2, 16000))
    >>> targets.shape
    torch.Size([2, 49, 80])
    >>> bool(targets.mean((0, 1)).abs().max() < 1e-4)
    True
    """
    mel = torchaudio.transforms.MelSpectrogram(
        SAMPLE_RATE,
        n_fft=WINDOW,
        hop_length=HOP,
        n_mels=N_MELS,
        center=False,
    )
    side = (WINDOW - FRAME) // 2
    with torch.no_grad():
        padded = torch.nn.functional.pad(wavs, (side, side))
        frames = torch.log(mel(padded) + 1e-6).transpose(1, 2)
        mean = frames.mean((0, 1))
        std = frames.std((0, 1))
    return (frames - mean) / std


def unlabelled_speech(speech, utterances, seconds, seed):
    """The pretraining set: ``utterances`` of each source in ``speech``.

    Arguments
    ---------
    speech : sequence of str
        Keys of :data:`UNLABELLED_SPEECH`.
    utterances : int
        Utterances of each source.
    seconds : float
        Length of each utterance.
    seed : int
        Seed of the speech.

    Returns
    -------
    torch.Tensor
        ``[len(speech) * utterances, samples]`` at 16 kHz, the sources one
        after the other.

    Example
    -------
    >>> unlabelled_speech(("synthetic", "espeak"), 2, 0.5, seed=0).shape
    torch.Size([4, 8000])
    """
    unknown = sorted(set(speech) - set(UNLABELLED_SPEECH))
    if unknown or not speech:
        raise ValueError(
            f"speech must name some of {sorted(UNLABELLED_SPEECH)}, got "
            f"{list(speech)}"
        )
    return torch.from_numpy(
        np.concatenate([
            UNLABELLED_SPEECH[source](utterances, seconds, SAMPLE_RATE, seed)
            for source in speech
        ])
    )  # fmt: skip


def pretrain_on_synthetic_speech(
    model,
    steps=800,
    utterances=512,
    seconds=2.0,
    batch_size=16,
    lr=6e-3,
    normalize_wav=False,
    seed=0,
    progress=True,
    speech=("synthetic", "espeak"),
):
    """Pretrain a Hugging Face WavLM / HuBERT model in place, label-free.

    Arguments
    ---------
    model : transformers.PreTrainedModel
        A ``WavLMModel`` or ``HubertModel``; left in eval mode.
    steps : int
        Optimiser steps.
    utterances : int
        Utterances of each speech source.
    seconds : float
        Length of each utterance.
    batch_size : int
        Utterances per step.
    lr : float
        Adam's learning rate.
    normalize_wav : bool
        Standardise each waveform first (the model's feature extractor
        setting, ``do_normalize``).
    seed : int
        Seed of the speech, the batches, dropout and masking (the global
        random states of torch and numpy are left as they were).
    progress : bool
        Show a progress bar.
    speech : sequence of str
        The speech sources (keys of :data:`UNLABELLED_SPEECH`).

    Returns
    -------
    list of float
        The loss (mean squared error) of every step.
    """
    wavs = unlabelled_speech(speech, utterances, seconds, seed)
    if normalize_wav:
        wavs = (wavs - wavs.mean(1, keepdim=True)) / (
            wavs.std(1, keepdim=True) + 1e-7
        )
    targets = log_mel_targets(wavs)
    losses = []
    numpy_state = np.random.get_state()  # Hugging Face masks with numpy
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        head = torch.nn.Linear(model.config.hidden_size, N_MELS)
        optimizer = torch.optim.Adam(
            [*model.parameters(), *head.parameters()], lr=lr
        )
        model.train()
        for _ in tqdm(range(steps), desc="Pretraining", disable=not progress):
            batch = torch.randint(len(wavs), (batch_size,))
            hidden = model(wavs[batch]).last_hidden_state
            frames = min(hidden.shape[1], targets.shape[1])
            loss = torch.nn.functional.mse_loss(
                head(hidden[:, :frames]), targets[batch, :frames]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    np.random.set_state(numpy_state)
    model.eval()
    return losses
