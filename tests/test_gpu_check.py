"""benchmarks/gpu_check.sh runs only when a session is lent a GPU; its CPU rehearsal runs here, so the
script is known to work the day one is (every check, toy sizes, the real code paths)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_runs_every_check():
    pytest.importorskip("monai")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry"], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert any(ln.startswith("amp     MedNeXt-S k3") and "speed-up x" in ln for ln in lines), proc.stdout
    assert any(ln.startswith("memory  MedNeXt-S iso 32^3") and "estimate/measured" in ln for ln in lines), proc.stdout
    assert any(ln.startswith("memory  worst deviation") for ln in lines), proc.stdout
    assert any(ln.startswith("predict volume (40, 48, 36)") and "labels agree on" in ln for ln in lines), proc.stdout


def test_gpu_check_refuses_without_a_gpu_unless_dry():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the real run is the device session's, not the test suite's")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--checks", "amp"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "no CUDA device visible" in proc.stderr
