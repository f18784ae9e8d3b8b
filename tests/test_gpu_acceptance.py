"""benchmarks/gpu_acceptance.py: without CUDA it says so in one line and fails; the GPU peaks it knows."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_without_cuda_one_line_and_exit_status_2(tmp_path):
    out = tmp_path / "gpu_acceptance.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU even on a machine that has one
    run = subprocess.run([sys.executable, "benchmarks/gpu_acceptance.py", "--out", str(out)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    lines = run.stdout.strip().splitlines()
    assert run.returncode == 2, run.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("gpu_acceptance: FAILED, no CUDA device visible"), lines
    assert not out.exists()


def test_known_bf16_peaks_match_the_most_specific_name(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from gpu_acceptance import known_peak

    assert known_peak("NVIDIA H100 80GB HBM3") == 989e12 and known_peak("NVIDIA H100 PCIe") == 756e12
    assert known_peak("NVIDIA H200") == 989e12 and known_peak("NVIDIA A100-SXM4-80GB") == 312e12
    assert known_peak("NVIDIA L4") == 121e12 and known_peak("NVIDIA L40S") == 362e12
    assert known_peak("NVIDIA L40") is None and known_peak("NVIDIA GeForce RTX 3090") is None
