#!/usr/bin/env python3
"""Peak memory of a stage-1 step with and without gradient checkpointing.

One stage-1 training step (forward and backward of the speech model in
the ``contrastive`` freeze policy, attention pooling, contrastive + margin
loss; ``bench_stage1_step.train_step``) on a random batch of ``--seconds``
crops, measured in a fresh process per setting:

* on CUDA: ``torch.cuda.max_memory_allocated`` and the time per step at
  ``--batch-size``, then the largest batch that fits in ``--budget-gib``
  (the process is capped to that share of the device): doubled until CUDA
  runs out of memory, then bisected, up to ``--max-batch``;
* on a CPU: the process's peak resident memory (``ru_maxrss``) and the time
  per step at a few batch sizes, and a straight line through them,
  extrapolated to ``--budget-gib``: an estimate, labelled as such.

Ends with the with / without checkpointing ratios of peak memory and step
time.

    python benchmarks/memory.py                         # base WavLM, CPU
    python benchmarks/memory.py --device cuda:0 --batch-size 32 \\
        --budget-gib 80
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from _models import SIZES, speech_model_source
from bench_stage1_step import build_model, train_step

from speechbrain_sercl.method.losses import CrossCorpusContrastiveLoss


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument(
        "--batch-sizes",
        default="1,2,4",
        help="CPU: the batch sizes measured (comma-separated)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="CUDA")
    parser.add_argument("--budget-gib", type=float, default=None)
    parser.add_argument("--max-batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpointing", type=int, default=0)
    parser.add_argument("--search", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def step_inputs(batch_size, seconds, device):
    samples = int(seconds * 16000)
    wavs = torch.randn(batch_size, samples, device=device)
    lengths = torch.linspace(0.6, 1.0, batch_size, device=device)
    positives = torch.arange(batch_size, device=device) < batch_size // 2
    return wavs, lengths, positives


def run_steps(model, loss, batch_size, arguments):
    """Seconds per step after one warm-up step."""
    device = torch.device(arguments.device)
    wavs, lengths, positives = step_inputs(
        batch_size, arguments.seconds, device
    )
    step = (*model, loss, wavs, lengths, positives, None)
    train_step(*step)
    synchronise(device)
    start = time.perf_counter()
    for _ in range(arguments.steps):
        for module in model:
            module.zero_grad(set_to_none=True)
        train_step(*step)
    synchronise(device)
    return (time.perf_counter() - start) / arguments.steps


def synchronise(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fits(model, loss, batch_size, arguments):
    """Whether a step of this batch size fits on the device."""
    try:
        run_steps(model, loss, batch_size, arguments)
        return True
    except torch.OutOfMemoryError:
        return False
    finally:
        for module in model:
            module.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()


def largest_batch(model, loss, arguments):
    """Double until out of memory, then bisect; capped at --max-batch."""
    good, bad = 0, None
    size = 1
    while size <= arguments.max_batch:
        if not fits(model, loss, size, arguments):
            bad = size
            break
        good, size = size, size * 2
    if bad is None:
        return good, True
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (
            (middle, bad)
            if fits(model, loss, middle, arguments)
            else (good, middle)
        )
    return good, False


def worker(arguments):
    """One setting in this fresh process; prints a JSON line."""
    device = torch.device(arguments.device)
    torch.manual_seed(0)
    result = {}
    with tempfile.TemporaryDirectory() as folder:
        model = build_model(
            speech_model_source(arguments.size),
            folder,
            bool(arguments.checkpointing),
            device,
        )
        loss = CrossCorpusContrastiveLoss()
        if device.type == "cuda":
            if arguments.budget_gib:
                total = torch.cuda.get_device_properties(device).total_memory
                torch.cuda.set_per_process_memory_fraction(
                    min(1.0, arguments.budget_gib * 2**30 / total), device
                )
            if arguments.search:
                batch, capped = largest_batch(model, loss, arguments)
                result.update(largest_batch=batch, capped=capped)
            else:
                torch.cuda.reset_peak_memory_stats(device)
                result["seconds"] = run_steps(
                    model, loss, arguments.batch_size, arguments
                )
                result["peak"] = torch.cuda.max_memory_allocated(device)
        else:
            result["seconds"] = run_steps(
                model, loss, arguments.batch_size, arguments
            )
            kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            result["peak"] = kib * 1024
    print(json.dumps(result))


def measure(arguments, checkpointing, batch_size, search=False):
    """Run one setting in a fresh process; its JSON result."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        f"--size={arguments.size}",
        f"--device={arguments.device}",
        f"--seconds={arguments.seconds}",
        f"--batch-size={batch_size}",
        f"--steps={arguments.steps}",
        f"--max-batch={arguments.max_batch}",
        f"--checkpointing={int(checkpointing)}",
    ]
    if arguments.budget_gib:
        command.append(f"--budget-gib={arguments.budget_gib}")
    if search:
        command.append("--search")
    output = subprocess.run(
        command, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def cpu_report(arguments):
    budget = arguments.budget_gib or 24.0
    sizes = [int(size) for size in arguments.batch_sizes.split(",")]
    summary = {}
    print(
        f"{'checkpointing':>13s} {'batch':>5s} {'peak RSS GiB':>12s} "
        f"{'s/step':>7s}"
    )
    for checkpointing in (False, True):
        rows = [measure(arguments, checkpointing, size) for size in sizes]
        for size, row in zip(sizes, rows, strict=True):
            print(
                f"{str(checkpointing):>13s} {size:5d} "
                f"{row['peak'] / 2**30:12.2f} {row['seconds']:7.2f}"
            )
        peaks = np.array([row["peak"] for row in rows], dtype=np.float64)
        slope, intercept = np.polyfit(sizes, peaks, 1)
        largest = int((budget * 2**30 - intercept) // slope)
        print(
            f"  estimate, checkpointing={checkpointing}: "
            f"{slope / 2**20:.0f} MiB per utterance + "
            f"{intercept / 2**30:.2f} GiB; largest batch in {budget:g} GiB "
            f"of CPU memory ~{largest} (extrapolated, not measured)"
        )
        summary[checkpointing] = {
            "peak": slope,
            "seconds": rows[-1]["seconds"],
        }
    return summary, f"memory per utterance, time at batch {sizes[-1]}"


def cuda_report(arguments):
    budget = arguments.budget_gib or 80.0
    arguments.budget_gib = budget
    summary = {}
    largest_label = f"largest batch in {budget:g} GiB"
    print(
        f"{'checkpointing':>13s} {'batch':>5s} {'peak GiB':>9s} "
        f"{'s/step':>7s} {largest_label:>24s}"
    )
    for checkpointing in (False, True):
        row = measure(arguments, checkpointing, arguments.batch_size)
        found = measure(arguments, checkpointing, 1, search=True)
        largest = (
            f"{found['largest_batch']}{'+ (cap)' if found['capped'] else ''}"
        )
        print(
            f"{str(checkpointing):>13s} {arguments.batch_size:5d} "
            f"{row['peak'] / 2**30:9.2f} {row['seconds']:7.3f} {largest:>24s}"
        )
        summary[checkpointing] = row
    return summary, f"at batch {arguments.batch_size}"


def main():
    arguments = parse_arguments()
    if arguments.worker:
        worker(arguments)
        return
    cuda = arguments.device.startswith("cuda")
    print(
        f"stage-1 step at {arguments.size} size (WavLM), {arguments.device}, "
        f"crops of {arguments.seconds} s, a fresh process per setting; "
        f"{'CUDA peak allocation' if cuda else 'peak RSS of the process'}"
    )
    summary, basis = (cuda_report if cuda else cpu_report)(arguments)
    off, on = summary[False], summary[True]
    print(
        f"checkpointing / none ({basis}): memory "
        f"{on['peak'] / off['peak']:.2f}, time "
        f"{on['seconds'] / off['seconds']:.2f}"
    )


if __name__ == "__main__":
    main()
