"""Tiny models trained on the real data, shared by the deployment and backend tests.

* ``3d_fullres``: plan -> preprocess -> ``mednext_train`` on Dataset001 at 6 mm (the real pipeline);
* ``2d``: a 2D MedNeXt trained by a short Adam loop on the 2d-preprocessed slices (``mednext_train``
  on 2D segmentation configurations fails on main's sampler, so the loop stands in for it), written in
  the trainer's model-folder layout with the pipeline's plans;
* ``2d_cls``: an XrayMoE classifier trained by ``mednext_train`` on Dataset101.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mednext_fw.network_architectures.registry import build_network
from mednext_fw.planners.plans import Plans

TINY_NET = {"n_channels": 4, "block_counts": [1] * 9}
TRAIN = ["--n-channels", "4", "--epochs", "1", "--iters-per-epoch", "4", "--val-iters", "1", "--num-workers", "0",
         "--no-final-val", "--no-progress", "--seed", "0", "--network-kwargs", '{"block_counts": [1,1,1,1,1,1,1,1,1]}']


def _env(root: Path) -> pytest.MonkeyPatch:
    mp = pytest.MonkeyPatch()
    for k in ("raw", "preprocessed", "results"):
        (root / k).mkdir(exist_ok=True)
        mp.setenv(f"MEDNEXT_{k}", str(root / k))
    return mp


def train_segmentation_models(root: Path, shared_data: Path) -> dict[str, Path]:
    from mednext_fw.cli import plan_and_preprocess, train

    mp = _env(root)
    try:
        shutil.copytree(shared_data / "Dataset001_BrainMask", root / "raw" / "Dataset001_BrainMask")
        assert plan_and_preprocess.main(["-d", "1", "-c", "3d_fullres", "2d", "--spacing", "6", "6", "6",
                                         "-np", "1"]) == 0
        assert train.main(["3d_fullres", "0", "--patch-size", "32", "32", "32", *TRAIN]) == 0
    finally:
        mp.undo()
    results = root / "results" / "Dataset001_BrainMask"
    _train_2d(root / "preprocessed" / "Dataset001_BrainMask", results / "MedNeXtTrainer__2d")
    return {"3d_fullres": results / "MedNeXtTrainer__3d_fullres", "2d": results / "MedNeXtTrainer__2d"}


def _train_2d(preprocessed: Path, folder: Path, steps: int = 40, patch: int = 32) -> None:
    plans = Plans.load(preprocessed / "plans.json")
    config = plans.configuration("2d")
    config.patch_size = [patch, patch]
    config.network.kwargs = dict(TINY_NET)
    kwargs = {"in_channels": 1, "num_classes": 2, "variant": "S", "dim": 2, "deep_supervision": False, **TINY_NET}
    torch.manual_seed(0)
    net = build_network("mednext", **kwargs)
    data_dir = preprocessed / config.data_identifier
    cases = [(np.load(p), np.load(p.with_name(p.stem + "_seg.npy"))) for p in sorted(data_dir.glob("*_1mm.npy"))]
    rng = np.random.default_rng(0)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(steps):
        xs, ys = [], []
        for _ in range(8):
            img, seg = cases[rng.integers(len(cases))]
            z = rng.integers(img.shape[1] // 4, 3 * img.shape[1] // 4)
            x = np.zeros((1, patch, patch), np.float32)
            y = np.zeros((patch, patch), np.int64)
            h, w = min(patch, img.shape[2]), min(patch, img.shape[3])
            x[:, :h, :w] = img[:, z, :h, :w]
            y[:h, :w] = np.maximum(seg[0, z, :h, :w], 0)
            xs.append(x)
            ys.append(y)
        loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(np.stack(xs))), torch.from_numpy(np.stack(ys)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    (folder / "fold_0").mkdir(parents=True)
    plans.configurations = {"2d": config}
    plans.save(folder / "plans.json")
    shutil.copy(preprocessed / "dataset.json", folder / "dataset.json")
    torch.save({"network_builder": {"name": "mednext", "kwargs": kwargs}, "network_state": net.state_dict(),
                "epoch": steps, "trainer_name": "MedNeXtTrainer", "config_name": "2d"},
               folder / "fold_0" / "checkpoint_final.pth")


def train_classifier(root: Path, shared_data: Path, trainer: str = "XrayMoE") -> Path:
    from mednext_fw.cli import plan_and_preprocess, train

    mp = _env(root)
    try:
        (root / "raw" / "Dataset101_MRIPlanes").symlink_to(shared_data / "Dataset101_MRIPlanes")
        assert plan_and_preprocess.main(["-d", "101", "--input-size", "32", "-np", "1"]) == 0
        assert train.main(["2d_cls", "0", "-d", "101", "-tr", trainer, "--epochs", "1", "--iters-per-epoch", "3",
                           "--val-iters", "1", "--batch-size", "8", "--network-kwargs", '{"num_experts": 4, "k": 2}',
                           "--device", "cpu", "--no-progress"]) == 0
    finally:
        mp.undo()
    return root / "results" / "Dataset101_MRIPlanes" / f"{trainer}__2d_cls"
