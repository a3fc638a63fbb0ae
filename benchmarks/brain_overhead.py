#!/usr/bin/env python3
"""Our Brain's training step vs a bare PyTorch loop, same model and batches.

``ContrastiveBrain.fit_batch`` (SpeechBrain's step: autocast context,
``compute_forward``, ``compute_objectives`` with its logged statistics,
backward, our clipping of every trainable parameter, Adam step) against a
hand-written loop doing the same maths (forward, contrastive + margin
loss, backward, ``clip_grad_norm_``, Adam step) on the same modules and
the same stage-1 batches. The two alternate step by step (each first
every other step); the script
prints the median time of each and the Brain / bare ratio last (goal
<= 1.05).

    python benchmarks/brain_overhead.py                    # tiny WavLM, CPU
    python benchmarks/brain_overhead.py --size base --device cuda:0 \\
        --batch-size 32 --seconds 6
"""

import argparse
import statistics
import tempfile
import time

import speechbrain as sb
import torch
from _models import SIZES, speech_model_source
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain.utils.train_logger import FileTrainLogger

from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.method.brains import ContrastiveBrain, parameter_groups
from speechbrain_sercl.method.embedding import pool_utterances
from speechbrain_sercl.method.losses import (
    CrossCorpusContrastiveLoss,
    positive_mask_from_labels,
)
from speechbrain_sercl.method.pooling import AttentionPooling
from speechbrain_sercl.method.schedulers import MultiStepScheduler

MAX_GRAD_NORM = 5.0


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    return parser.parse_args()


def make_batches(arguments, count):
    """Stage-1-like batches: positives first, lengths 60 to 100 %."""
    generator = torch.Generator().manual_seed(0)
    samples = int(arguments.seconds * 16000)
    size = arguments.batch_size
    batches = []
    for _ in range(count):
        lengths = torch.randint(samples * 6 // 10, samples + 1, (size,))
        batches.append(
            PaddedBatch(
                [
                    {
                        "id": f"u{i}",
                        "sig": torch.randn(int(n), generator=generator),
                        "emotion": "sad" if i < size // 2 else "angry",
                    }
                    for i, n in enumerate(lengths.tolist())
                ]
            )
        )
    return batches


def make_brain(arguments, folder):
    source = speech_model_source(arguments.size)
    ssl = SSLBackbone(source, folder, stage="contrastive")
    hparams = {
        "contrastive_loss": CrossCorpusContrastiveLoss(),
        "lr_schedule": MultiStepScheduler(1e-4, milestones=[], factor=0.5),
        "lr_scales": {"ssl": 0.4},
        "epoch_counter": EpochCounter(1),
        "train_logger": FileTrainLogger(f"{folder}/train_log.txt"),
    }
    brain = ContrastiveBrain(
        modules={"ssl": ssl, "pooling": AttentionPooling(ssl.hidden_size)},
        opt_class=torch.optim.Adam,
        hparams=hparams,
        run_opts={
            "device": arguments.device,
            "noprogressbar": True,
            "max_grad_norm": MAX_GRAD_NORM,
        },
    )
    brain.on_fit_start()
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    return brain


def bare_step(modules, optimizer, loss, batch):
    """The same step without the Brain."""
    device = next(modules.parameters()).device
    batch = batch.to(device)
    wavs, lengths = batch.sig
    embeddings = pool_utterances(
        modules["ssl"], modules["pooling"], wavs, lengths
    )
    positives = positive_mask_from_labels(batch.emotion, batch.emotion[0])
    loss(embeddings, positives.to(device)).total.backward()
    torch.nn.utils.clip_grad_norm_(
        [p for group in optimizer.param_groups for p in group["params"]],
        MAX_GRAD_NORM,
    )
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def timed(step, batch, cuda, *arguments):
    """Seconds of ``step(*arguments, batch)``."""
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    step(*arguments, batch)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    arguments = parse_arguments()
    torch.manual_seed(0)
    cuda = arguments.device.startswith("cuda")
    with tempfile.TemporaryDirectory() as folder:
        brain = make_brain(arguments, folder)
        modules = brain.modules
        optimizer = torch.optim.Adam(
            parameter_groups(modules, {"ssl": 0.4}), lr=1e-4
        )
        loss = brain.hparams.contrastive_loss
        batches = make_batches(arguments, 4)
        times = {"brain": [], "bare": []}
        for step in range(arguments.warmup + arguments.steps):
            batch = batches[step % len(batches)]
            steps = {
                "brain": (brain.fit_batch,),
                "bare": (bare_step, modules, optimizer, loss),
            }
            # Each goes first every other step: no order effect.
            names = list(steps)[:: 1 if step % 2 else -1]
            spent = {
                name: timed(steps[name][0], batch, cuda, *steps[name][1:])
                for name in names
            }
            if step >= arguments.warmup:
                for name, seconds in spent.items():
                    times[name].append(seconds)
    brain_time = statistics.median(times["brain"])
    bare_time = statistics.median(times["bare"])
    print(
        f"stage-1 training step, {arguments.size} WavLM, {arguments.device}, "
        f"{torch.get_num_threads()} threads, batch {arguments.batch_size} x "
        f"<= {arguments.seconds} s; median of {arguments.steps} alternating "
        f"steps after {arguments.warmup} warm-up"
    )
    print(f"{'bare loop ms':>14s} {'Brain ms':>10s} {'Brain/bare':>11s}")
    print(
        f"{bare_time * 1e3:14.1f} {brain_time * 1e3:10.1f} "
        f"{brain_time / bare_time:11.3f}"
    )


if __name__ == "__main__":
    main()
