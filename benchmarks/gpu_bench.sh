#!/usr/bin/env bash
# The benchmarks of `make bench` at base size (the architecture of
# wavlm-base-plus, random weights) on CUDA: padding, Brain overhead, the
# stage-1 step (float32 / bf16 x checkpointing), peak memory and the
# largest batch in 80 GiB, and the real-time factor of `sercl predict`.
# About 4 minutes on one H200; record what it prints in
# docs/benchmarks.md.
#
#   bash benchmarks/gpu_bench.sh
#
# Needs a CUDA device and the package importable (make setup, or
# PYTHONPATH). PYTHON picks the interpreter (default .venv/bin/python, else
# python3); DEVICE=cpu SIZE=tiny runs the same steps on a CPU (a dry run).
set -euo pipefail
cd "$(dirname "$0")/.."
default_python=python3
[ -x .venv/bin/python ] && default_python=.venv/bin/python
python=${PYTHON:-$default_python}
device=${DEVICE:-cuda:0}
size=${SIZE:-base}

export DEVICE=$device
"$python" - <<'PY'
import os, torch, speechbrain, transformers
print("torch", torch.__version__, "| speechbrain", speechbrain.__version__,
      "| transformers", transformers.__version__)
if os.environ["DEVICE"].startswith("cuda"):
    assert torch.cuda.is_available(), "no CUDA device: this check needs a GPU"
    print("device:", torch.cuda.get_device_name(0))
PY
run() {
    echo "=== $* ==="
    "$python" "$@"
}
run benchmarks/padding.py
run benchmarks/brain_overhead.py --size "$size" --device "$device" \
    --batch-size 32 --seconds 6 --steps 10
run benchmarks/bench_stage1_step.py --size "$size" --device "$device" \
    --batch-size 32 --seconds 6
run benchmarks/memory.py --size "$size" --device "$device" --batch-size 32 \
    --budget-gib 80 --max-batch 512
run benchmarks/inference.py --size "$size" --device "$device" --files 256 \
    --batch-size 32
run benchmarks/stage2_cache.py --size "$size" --device "$device" \
    --utterances 256 --epochs 3
echo "GPU benchmarks done"
