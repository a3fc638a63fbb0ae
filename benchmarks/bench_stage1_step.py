#!/usr/bin/env python3
"""Time and memory of one stage-1 training step, variants side by side.

Runs forward + backward of the stage-1 model (speech model in the
``contrastive`` freeze policy, attention pooling, contrastive + margin
loss) on a random batch, for float32 and bf16 autocast, each with and
without gradient checkpointing, and prints each variant's time per step
and peak memory as ratios to float32 without checkpointing, all measured in
this one run. Memory is CUDA's peak allocation (not measured on a CPU).

    python benchmarks/bench_stage1_step.py                     # tiny WavLM, CPU
    python benchmarks/bench_stage1_step.py --device cuda:0 \\
        --size base --batch-size 32 --seconds 6

``--size base`` is the architecture of wavlm-base-plus with random weights
(``_models.py``); ``--source`` takes a hub id or a model folder instead.
"""

import argparse
import tempfile
import time

import torch
from _models import SIZES, speech_model_source

from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.method.losses import CrossCorpusContrastiveLoss
from speechbrain_sercl.method.pooling import AttentionPooling

VARIANTS = [
    ("float32", None, False),
    ("float32 + checkpointing", None, True),
    ("bf16 autocast", torch.bfloat16, False),
    ("bf16 autocast + checkpointing", torch.bfloat16, True),
]


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="tiny")
    parser.add_argument("--source", help="a hub id or folder (not --size)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    return parser.parse_args()


def build_model(source, save_path, checkpointing, device):
    backbone = SSLBackbone(
        source, save_path, gradient_checkpointing=checkpointing
    )
    pooling = AttentionPooling(backbone.hidden_size)
    return backbone.to(device).train(), pooling.to(device)


def train_step(backbone, pooling, loss, wavs, lengths, positives, dtype):
    device_type = wavs.device.type
    with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
        embeddings = pooling(backbone(wavs, lengths), lengths)
    loss(embeddings, positives).total.backward()


def measure(arguments, save_path, dtype, checkpointing):
    """Seconds per step and peak CUDA memory (bytes, or None on a CPU)."""
    device = torch.device(arguments.device)
    torch.manual_seed(0)
    backbone, pooling = build_model(
        arguments.source, save_path, checkpointing, device
    )
    samples = int(arguments.seconds * 16000)
    wavs = torch.randn(arguments.batch_size, samples, device=device)
    lengths = torch.linspace(0.6, 1.0, arguments.batch_size, device=device)
    positives = torch.arange(arguments.batch_size, device=device) < (
        arguments.batch_size // 2
    )
    loss = CrossCorpusContrastiveLoss()
    step = (backbone, pooling, loss, wavs, lengths, positives, dtype)
    for _ in range(arguments.warmup):
        train_step(*step)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(arguments.steps):
        train_step(*step)
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / arguments.steps
    peak = torch.cuda.max_memory_allocated() if cuda else None
    del backbone, pooling
    return seconds, peak


def main():
    arguments = parse_arguments()
    arguments.source = arguments.source or speech_model_source(arguments.size)
    print(
        f"stage-1 step: {arguments.source}, batch {arguments.batch_size} x "
        f"{arguments.seconds} s, {arguments.device}, "
        f"{arguments.steps} timed steps after {arguments.warmup} warm-up"
    )
    with tempfile.TemporaryDirectory() as save_path:
        results = [
            (name, *measure(arguments, save_path, dtype, checkpointing))
            for name, dtype, checkpointing in VARIANTS
        ]
    base_time, base_peak = results[0][1], results[0][2]
    print(
        f"{'variant':32s} {'s/step':>8s} {'x time':>7s} "
        f"{'MiB':>8s} {'x mem':>6s}"
    )
    for name, seconds, peak in results:
        memory = (
            f"{peak / 2**20:8.0f} {peak / base_peak:6.2f}"
            if peak
            else (f"{'n/a':>8s} {'n/a':>6s}")
        )
        print(f"{name:32s} {seconds:8.3f} {seconds / base_time:7.2f} {memory}")


if __name__ == "__main__":
    main()
