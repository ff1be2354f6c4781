"""``benchmarks/gpu_check.py --dry-run``: the GPU check's code paths (parity, eager and compiled
training, memory model, resume, probe) run on the CPU at tiny sizes and all pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_run_passes_on_the_cpu():
    pytest.importorskip("transformers")
    run = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--dry-run"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    for section in ("== 1. build and device", "== 2. parity", "== 3. training speed"):
        assert section in out
    assert "PASS parity bert-mini fp32 on cpu" in out
    assert "PASS parity albert-mini fp32 on cpu" in out
    for model in ("bert-tiny", "albert-tiny"):
        for mode in ("eager", "compile"):
            assert f"PASS training {model} {mode}" in out
    assert "PASS resume on cpu" in out and "PASS probe with attentions on cpu" in out
    assert out.rstrip().endswith("8 passed, 0 failed")


def test_without_a_gpu_it_says_so_in_one_line_and_names_dry_run():
    """Not a traceback: one line that no CUDA device is visible, pointing to --dry-run; exit 2."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    run = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("gpu_check: no CUDA device is visible")
    assert "--dry-run" in line and "Traceback" not in run.stderr
