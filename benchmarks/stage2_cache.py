#!/usr/bin/env python3
"""Stage 2 with and without the feature cache, on the same data and model.

Writes ``--utterances`` random utterances of ``--seconds`` seconds, then
trains stage 2 (``ClassifierBrain``: frozen speech model, attention
pooling and classifier; crops of ``--crop-seconds``, batches of
``--batch-size``) for ``--epochs`` epochs twice from the same initial
weights: recomputing the speech model on every batch, then from the
cache, after building it once. It prints the seconds per epoch of each
(the median over the epochs), the one-off build time, and the time of
10 epochs (the paper's stage 2) extrapolated from them: ``10 * epoch``
without the cache, ``build + 10 * epoch`` with it; the ratio last.
Measured epochs should be at least 2 to take a median of.

``--front-end`` measures instead what caching the frozen CNN and feature
projection would save the FT baseline and stage 1 (whose transformer
trains): the share of a training step's time (forward and backward, FT
freeze policy) spent in that frozen front end, on batches of the same
crops; caching it could at best make a step ``1 / (1 - share)`` times
faster.

    python benchmarks/stage2_cache.py                      # tiny WavLM, CPU
    python benchmarks/stage2_cache.py --size base \\
        --device cuda:0 --utterances 256 --seconds 4 --epochs 3

``--size base`` is the architecture of wavlm-base-plus with random weights
(``_models.py``); ``--source`` takes a hub id or a model folder instead.
"""

import argparse
import functools
import os
import statistics
import tempfile
import time

import numpy as np
import soundfile
import torch
from _models import SIZES, speech_model_source
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain.utils.train_logger import FileTrainLogger

from speechbrain_sercl.data.pipeline import (
    EpochCrop,
    make_dataset,
    make_label_encoder,
)
from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.method.brains import ClassifierBrain
from speechbrain_sercl.method.embedding import pool_utterances
from speechbrain_sercl.method.head import EmotionClassifier
from speechbrain_sercl.method.pooling import AttentionPooling
from speechbrain_sercl.method.schedulers import MultiStepScheduler

SAMPLE_RATE = 16000
EMOTIONS = ("angry", "happy", "neutral", "sad")
PAPER_EPOCHS = 10


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="tiny")
    parser.add_argument("--source", help="a hub id or folder (not --size)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--utterances", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--crop-seconds", type=float, default=6.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--front-end", action="store_true")
    return parser.parse_args()


def write_corpus(folder, utterances, seconds):
    """Random utterances as wav files; a manifest of them."""
    rng = np.random.default_rng(0)
    manifest = {}
    for index in range(utterances):
        wav = os.path.join(folder, f"u{index}.wav")
        samples = 0.1 * rng.standard_normal(round(seconds * SAMPLE_RATE))
        soundfile.write(wav, samples, SAMPLE_RATE, subtype="FLOAT")
        manifest[f"u{index}"] = {
            "wav": wav,
            "emotion": EMOTIONS[index % len(EMOTIONS)],
            "corpus": "bench",
            "speaker": f"s{index % 4}",
        }
    return manifest


def stage2_brain(ssl, arguments, folder, cached):
    """A stage-2 Brain from fixed initial weights (the same for both)."""
    torch.manual_seed(0)
    encoder = make_label_encoder(EMOTIONS)
    hparams = {
        "lr_schedule": MultiStepScheduler(5e-4, milestones=[5], factor=0.1),
        "lr_scales": {},
        "train_logger": FileTrainLogger(os.path.join(folder, f"{cached}.txt")),
        "epoch_counter": EpochCounter(limit=arguments.epochs),
        "label_encoder": encoder,
        "output_folder": folder,
        "train_crop": EpochCrop(arguments.crop_seconds, seed=1),
        "use_feature_cache": cached,
        "feature_cache_folder": os.path.join(folder, "cache"),
    }
    modules = {
        "ssl": ssl,
        "pooling": AttentionPooling(ssl.hidden_size),
        "classifier": EmotionClassifier(ssl.hidden_size, len(encoder), 256),
    }
    return ClassifierBrain(
        modules=modules,
        opt_class=functools.partial(torch.optim.Adam, lr=5e-4),
        hparams=hparams,
        run_opts={"device": arguments.device, "noprogressbar": True},
    )


class EpochTimer:
    """Times each training epoch of a Brain (its stage start to end)."""

    def __init__(self, brain):
        self.seconds = []
        start, end = brain.on_stage_start, brain.on_stage_end
        device = torch.device(brain.device)

        def on_stage_start(stage, epoch=None):
            synchronise(device)
            self.started = time.perf_counter()
            return start(stage, epoch)

        def on_stage_end(stage, stage_loss, epoch=None):
            synchronise(device)
            self.seconds.append(time.perf_counter() - self.started)
            return end(stage, stage_loss, epoch)

        brain.on_stage_start, brain.on_stage_end = on_stage_start, on_stage_end


def synchronise(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epochs(brain, manifest, features):
    """Train the Brain's epochs; return the seconds of each."""
    timer = EpochTimer(brain)
    dataset = make_dataset(
        manifest,
        list(manifest),
        crop=brain.hparams.train_crop,
        label_encoder=brain.hparams.label_encoder,
        features=features,
    )
    brain.fit(
        brain.hparams.epoch_counter,
        dataset,
        train_loader_kwargs={"batch_size": brain.hparams.batch_size},
        progressbar=False,
    )
    return timer.seconds


def compare_stage2(arguments, ssl, manifest, folder):
    """Seconds per epoch without and with the cache, and the build."""
    results = {}
    for cached in (False, True):
        brain = stage2_brain(ssl, arguments, folder, cached)
        brain.hparams.batch_size = arguments.batch_size
        features = None
        if cached:
            synchronise(torch.device(arguments.device))
            started = time.perf_counter()
            features = brain.cached_features(manifest, list(manifest))
            synchronise(torch.device(arguments.device))
            results["build"] = time.perf_counter() - started
        seconds = train_epochs(brain, manifest, features)
        results[cached] = statistics.median(seconds)
    without = PAPER_EPOCHS * results[False]
    with_cache = results["build"] + PAPER_EPOCHS * results[True]
    print(f"seconds per epoch without the cache: {results[False]:.3f}")
    print(f"seconds per epoch with the cache:    {results[True]:.3f}")
    print(f"one-off cache build:                 {results['build']:.3f} s")
    print(
        f"{PAPER_EPOCHS} epochs (extrapolated): without {without:.1f} s, "
        f"with {with_cache:.1f} s (build included)"
    )
    print(f"per-epoch ratio: {results[False] / results[True]:.1f}")
    print(f"ratio (10 epochs, without / with): {without / with_cache:.2f}")


def front_end_share(arguments, folder):
    """Share of an FT training step spent in the frozen CNN + projection."""
    ssl = SSLBackbone(arguments.source, folder, stage="finetune")
    ssl.to(arguments.device).train()
    pooling = AttentionPooling(ssl.hidden_size).to(arguments.device)
    device = torch.device(arguments.device)
    length = round(min(arguments.seconds, arguments.crop_seconds) * SAMPLE_RATE)
    generator = torch.Generator().manual_seed(0)
    wavs = torch.randn(arguments.batch_size, length, generator=generator)
    wavs, lengths = wavs.to(device), torch.ones(len(wavs), device=device)
    model = ssl.hf_model
    steps, front = [], []
    for _ in range(arguments.epochs + 1):  # the first is a warm-up
        synchronise(device)
        started = time.perf_counter()
        pool_utterances(ssl, pooling, wavs, lengths).square().mean().backward()
        synchronise(device)
        steps.append(time.perf_counter() - started)
        started = time.perf_counter()
        with torch.no_grad():
            features = torch.stack(
                [model.feature_extractor(wav[None])[0].T for wav in wavs]
            )
            model.feature_projection(features)
        synchronise(device)
        front.append(time.perf_counter() - started)
    step, frozen = statistics.median(steps[1:]), statistics.median(front[1:])
    share = frozen / step
    print(f"seconds per FT training step:          {step:.3f}")
    print(f"seconds in the frozen CNN + projection: {frozen:.3f}")
    print(f"best speed-up from caching it: {1 / (1 - share):.2f}")
    print(f"share of the step in the frozen front end: {share:.3f}")


def main():
    arguments = parse_arguments()
    arguments.source = arguments.source or speech_model_source(arguments.size)
    with tempfile.TemporaryDirectory() as folder:
        print(
            f"{arguments.source} on {arguments.device}: "
            f"{arguments.utterances} utterances of {arguments.seconds} s, "
            f"crops of {arguments.crop_seconds} s, batches of "
            f"{arguments.batch_size}, {arguments.epochs} measured "
            f"{'steps' if arguments.front_end else 'epochs'}"
        )
        if arguments.front_end:
            front_end_share(arguments, folder)
            return
        manifest = write_corpus(folder, arguments.utterances, arguments.seconds)
        ssl = SSLBackbone(arguments.source, folder, stage="classifier")
        compare_stage2(arguments, ssl, manifest, folder)


if __name__ == "__main__":
    main()
