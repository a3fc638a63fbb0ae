#!/usr/bin/env python3
"""Stage-1 and FT training steps: a CNN call per utterance vs shared calls.

``SSLBackbone`` runs its CNN front end on each utterance's valid samples
only; utterances of the same valid length share one call. Training crops
make many such utterances: every IEMOCAP utterance longer than the crop
(6 s in the paper's YAMLs) is cut to exactly the crop. This script times
a training step (forward and backward) both ways on the same model and
the same batch, interleaved: the one-call-per-utterance front end of
version 0.2.0 is reimplemented here (and only here) as ``per_utterance``.

* stage 1: the ``contrastive`` freeze policy, attention pooling, the
  contrastive + margin loss;
* FT: the ``finetune`` freeze policy, attention pooling, the emotion
  classifier, cross-entropy.

Batch: ``--batch-size`` IEMOCAP-like lengths (``_lengths.py``) cropped to
``--crop-seconds``. Per-utterance ms, shared ms and the shared /
per-utterance ratio are last on each line.

    python benchmarks/training_step.py                    # tiny WavLM, CPU
    python benchmarks/training_step.py --size base --batch-size 8
"""

import argparse
import tempfile
import types
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from _lengths import corpus_lengths
from _models import SIZES, speech_model_source
from _timing import interleaved_medians
from torch.nn.utils.rnn import pad_sequence

from speechbrain_sercl.method.backbone import SSLBackbone, frame_count
from speechbrain_sercl.method.head import EmotionClassifier
from speechbrain_sercl.method.losses import CrossCorpusContrastiveLoss
from speechbrain_sercl.method.pooling import AttentionPooling

RATE = 16000


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--crop-seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    return parser.parse_args()


def per_utterance(backbone, wavs, counts):
    """Version 0.2.0's front end: one CNN call per utterance."""
    rows = [
        backbone._valid_features(wav[None, :count])[0]
        for wav, count in zip(wavs, counts, strict=True)
    ]
    features = pad_sequence(rows, batch_first=True)
    total = frame_count(wavs.shape[1], backbone.hf_model.config)
    return F.pad(features, (0, 0, 0, total - features.shape[1]))


def cropped_batch(arguments, device):
    """Waveforms of IEMOCAP-like lengths cut to the crop, zero-padded."""
    seconds = corpus_lengths("iemocap", 0, arguments.batch_size)
    seconds = np.minimum(seconds, arguments.crop_seconds)
    generator = torch.Generator().manual_seed(0)
    utterances = [
        torch.randn(int(s * RATE), generator=generator) for s in seconds
    ]
    lengths = torch.tensor([len(u) for u in utterances])
    wavs = pad_sequence(utterances, batch_first=True).to(device)
    cropped = int((seconds == arguments.crop_seconds).sum())
    return wavs, (lengths / lengths.max()).to(device), cropped


def stage1_step(backbone, pooling, wavs, wav_lens):
    positives = torch.arange(len(wavs), device=wavs.device) < len(wavs) // 2
    embeddings = pooling(backbone(wavs, wav_lens), wav_lens)
    CrossCorpusContrastiveLoss()(embeddings, positives).total.backward()


def finetune_step(backbone, pooling, wavs, wav_lens, classifier):
    targets = torch.arange(len(wavs), device=wavs.device) % 4
    embeddings = pooling(backbone(wavs, wav_lens), wav_lens)
    F.nll_loss(classifier(embeddings), targets).backward()


def models_for(stage, source, save_path, device):
    """The same model twice: the front end of 0.2.0 and today's."""
    torch.manual_seed(0)
    backbone = SSLBackbone(source, save_path, stage=stage).to(device).train()
    old = SSLBackbone(source, save_path, stage=stage).to(device).train()
    old.load_state_dict(backbone.state_dict())
    old._padded_features = types.MethodType(per_utterance, old)
    pooling = AttentionPooling(backbone.hidden_size).to(device)
    return backbone, old, pooling


def main():
    arguments = parse_arguments()
    device = torch.device(arguments.device)
    source = speech_model_source(arguments.size)
    wavs, wav_lens, cropped = cropped_batch(arguments, device)
    print(
        f"training steps, {arguments.size} WavLM, {arguments.device}, "
        f"{torch.get_num_threads()} threads: batch of {arguments.batch_size} "
        f"IEMOCAP-like lengths cropped to {arguments.crop_seconds} s "
        f"({cropped} cut to the crop); median of {arguments.repeats} after "
        f"{arguments.warmup} warm-up"
    )
    header = f"{'per utterance ms':>17s} {'shared ms':>10s} {'ratio':>6s}"
    print(f"{'step':10s} {header}")
    with tempfile.TemporaryDirectory() as save_path:
        for name, stage in [("stage 1", "contrastive"), ("FT", "finetune")]:
            new, old, pooling = models_for(stage, source, save_path, device)
            if stage == "contrastive":
                step, extra = stage1_step, ()
            else:
                head = EmotionClassifier(new.hidden_size, 4).to(device)
                step, extra = finetune_step, (head,)
            first, second = interleaved_medians(
                [
                    partial(step, model, pooling, wavs, wav_lens, *extra)
                    for model in (old, new)
                ],
                arguments.warmup,
                arguments.repeats,
                cuda=device.type == "cuda",
            )
            print(
                f"{name:10s} {first * 1e3:17.1f} {second * 1e3:10.1f} "
                f"{second / first:6.2f}"
            )


if __name__ == "__main__":
    main()
