"""Fixtures for trainer tests: one synthetic preprocessed dataset per session, private results roots."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mednext_fw.trainers.settings import TrainingSettings
from tests.trainers.synthetic import NAME, make_synthetic_dataset


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks gain nothing from a second thread, and on a shared machine OpenMP spinning costs a lot."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth_data")
    make_synthetic_dataset(root, n_cases=4)
    return root


def point_roots(monkeypatch, data_root: Path, results_root: Path) -> Path:
    """MEDNEXT_* roots at ``data_root``'s raw/preprocessed and ``results_root``, with no nnU-Net or DDP
    variables left from the environment; returns the synthetic dataset's results folder."""
    monkeypatch.setenv("MEDNEXT_raw", str(data_root / "raw"))
    monkeypatch.setenv("MEDNEXT_preprocessed", str(data_root / "preprocessed"))
    monkeypatch.setenv("MEDNEXT_results", str(results_root))
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    return results_root / NAME


@pytest.fixture
def synth_env(synth_root, tmp_path, monkeypatch) -> Path:
    """MEDNEXT_* roots pointing at the shared synthetic data and a fresh results folder."""
    return point_roots(monkeypatch, synth_root, tmp_path / "results")


def fast_settings(**overrides) -> TrainingSettings:
    base = dict(num_epochs=2, iters_per_epoch=2, val_iters=1, num_workers=0, seed=1, device="cpu",
                final_validation=False, final_validation_tta=False, progress_bar=False)
    base.update(overrides)
    return TrainingSettings(**base)
