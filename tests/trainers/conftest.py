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


@pytest.fixture
def synth_env(synth_root, tmp_path, monkeypatch) -> Path:
    """MEDNEXT_* roots pointing at the shared synthetic data and a fresh results folder."""
    monkeypatch.setenv("MEDNEXT_raw", str(synth_root / "raw"))
    monkeypatch.setenv("MEDNEXT_preprocessed", str(synth_root / "preprocessed"))
    monkeypatch.setenv("MEDNEXT_results", str(tmp_path / "results"))
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    return tmp_path / "results" / NAME


def fast_settings(**overrides) -> TrainingSettings:
    base = dict(num_epochs=2, iters_per_epoch=2, val_iters=1, num_workers=0, seed=1, device="cpu",
                final_validation=False, final_validation_tta=False, progress_bar=False)
    base.update(overrides)
    return TrainingSettings(**base)
