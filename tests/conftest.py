"""Shared fixtures: the real data in ../shared/data and isolated data roots per test."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDNEXT_SHARED_DATA", REPO.parent / "shared" / "data"))

# Test tensors are tiny: one thread avoids the thread-synchronisation cost that dominates small ops
# (measured 10-100x slower with 2 threads when the 2-core machine is busy).
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _openvino_cache(tmp_path_factory):
    """OpenVINO's model cache in a folder of this test session, not the user's ~/.cache."""
    os.environ["MEDNEXT_cache"] = str(tmp_path_factory.mktemp("mednext_cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "Dataset001_BrainMask").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set MEDNEXT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def roots(tmp_path, monkeypatch) -> dict[str, Path]:
    """Empty raw/preprocessed/results roots, exported as the MEDNEXT_* variables."""
    out = {k: tmp_path / k for k in ("raw", "preprocessed", "results")}
    for k, p in out.items():
        p.mkdir()
        monkeypatch.setenv(f"MEDNEXT_{k}", str(p))
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.delenv(k, raising=False)
    return out


@pytest.fixture
def brain_raw(roots, shared_data) -> Path:
    """A private copy of Dataset001_BrainMask in the raw root (tests may modify it)."""
    dst = roots["raw"] / "Dataset001_BrainMask"
    shutil.copytree(shared_data / "Dataset001_BrainMask", dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    dst.chmod(0o755)
    return dst
