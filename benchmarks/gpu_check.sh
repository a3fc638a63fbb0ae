#!/usr/bin/env bash
# GPU check: the three Brains on CUDA in bf16 and fp16, through SpeechBrain's
# own run options (--device, --precision), on the embedded demo data with
# the tiny WavLM. One short stage-1 epoch, then stage 2 from that encoder and
# one FT epoch per corpus (`sercl folds demo --runs 0`), per precision; prints the train logs and test metrics, then
# times one stage-1 step in float32 and bf16, with and without gradient
# checkpointing (benchmarks/bench_stage1_step.py).
#
#   bash benchmarks/gpu_check.sh [OUTPUT_FOLDER]
#
# Needs a CUDA device and the package installed (make setup). Takes about a
# minute; record what it prints in docs/gpu_check.md. DEVICE=cpu
# PRECISIONS=bf16 runs the same steps on a CPU (a dry run of the script).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/gpu_check}
default_python=python3
[ -x .venv/bin/python ] && default_python=.venv/bin/python
python=${PYTHON:-$default_python}

export DEVICE=${DEVICE:-cuda:0}
"$python" - <<'PY'
import os, torch, speechbrain, transformers
print("torch", torch.__version__, "| speechbrain", speechbrain.__version__,
      "| transformers", transformers.__version__)
if os.environ["DEVICE"].startswith("cuda"):
    assert torch.cuda.is_available(), "no CUDA device: this check needs a GPU"
    print("device:", torch.cuda.get_device_name(0),
          "| bf16 supported:", torch.cuda.is_bf16_supported())
PY

for precision in ${PRECISIONS:-bf16 fp16}; do
    experiment="$out/$precision"
    echo "=== precision $precision: stage 1, stage 2 and FT of run 0 ==="
    "$python" -m speechbrain_sercl.cli folds demo --runs 0 \
        --experiment_folder="$experiment" --demo_data_folder="$out/data" \
        --number_of_epochs=1 --contrastive.batches_per_epoch=8 \
        --num_workers=0 --noprogressbar \
        --device="$DEVICE" --precision="$precision"
    tail -n 2 "$experiment"/paper/fold_0/*/train_log.txt \
        "$experiment"/paper/fold_0/*/*/train_log.txt
done
echo "=== stage-1 step: float32 vs bf16, gradient checkpointing on/off ==="
"$python" benchmarks/bench_stage1_step.py --device="$DEVICE"
echo "GPU check passed"
