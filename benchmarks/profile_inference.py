#!/usr/bin/env python3
"""Where ``sercl predict`` spends its time: one file at a time vs batches.

Profiles :func:`speechbrain_sercl.inference.predict.predict_files` with
``torch.profiler`` on the files and model of ``inference.py`` (base WavLM
with random weights, IEMOCAP-like lengths), once with batches of 1 and
once with ``--batch-size``, and prints the operators that took the most
time, side by side: seconds of each (the operator's own time, summed over
calls) and the batched / one-at-a-time ratio; then the totals.

    python benchmarks/profile_inference.py            # base WavLM, CPU
    python benchmarks/profile_inference.py --rows 20 --batch-size 16
"""

import argparse
import tempfile

import torch
from inference import build_classifier, write_files
from torch.profiler import ProfilerActivity, profile

from speechbrain_sercl.inference.predict import predict_files


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("tiny", "base"), default="base")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rows", type=int, default=12)
    return parser.parse_args()


def operator_seconds(classifier, files, batch_size):
    """``{operator: own CPU seconds}`` of one predict_files run."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        predict_files(classifier, files, batch_size=batch_size)
    return {
        event.key: event.self_cpu_time_total / 1e6
        for event in profiler.key_averages()
    }


def main():
    arguments = parse_arguments()
    with tempfile.TemporaryDirectory() as folder:
        classifier = build_classifier(arguments.size, "cpu", folder)
        files, seconds = write_files(folder, arguments.files, 0)
        predict_files(classifier, files[:2], batch_size=1)  # warm-up
        one = operator_seconds(classifier, files, 1)
        batched = operator_seconds(classifier, files, arguments.batch_size)
    print(
        f"sercl predict (predict_files), {arguments.size} WavLM, cpu, "
        f"{torch.get_num_threads()} threads: {len(files)} files, "
        f"{seconds:.1f} s of audio; own CPU seconds per operator"
    )
    label = f"batch {arguments.batch_size}"
    print(f"{'operator':34s} {'batch 1':>8s} {label:>8s} {'ratio':>6s}")
    top = sorted(set(one) | set(batched), key=lambda k: -batched.get(k, 0))
    for name in top[: arguments.rows]:
        first, second = one.get(name, 0.0), batched.get(name, 0.0)
        ratio = f"{second / first:6.2f}" if first else f"{'-':>6s}"
        print(f"{name:34s} {first:8.3f} {second:8.3f} {ratio}")
    total_one, total_batched = sum(one.values()), sum(batched.values())
    print(
        f"{'all operators':34s} {total_one:8.3f} {total_batched:8.3f} "
        f"{total_batched / total_one:6.2f}"
    )


if __name__ == "__main__":
    main()
