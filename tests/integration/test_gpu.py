"""The GPU check script runs on CUDA in bf16 and fp16 (skipped without)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_check_script_runs_all_brains_in_bf16_and_fp16(tmp_path):
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "GPU check passed" in result.stdout
    for precision in ("bf16", "fp16"):
        for method in ("classifier", "finetune"):
            metrics = (
                tmp_path / precision / "paper" / "fold_0" / "iemocap" / method
            )
            assert (metrics / "test_metrics.json").exists()
