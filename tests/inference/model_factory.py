"""Builds small trained-model folders (contract layout, random tiny MedNeXt) for inference tests."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

import torch

from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.network_architectures.registry import NETWORKS, build_network
from mednext_fw.planners.plans import Configuration, NetworkPlan, Plans

TINY = {"n_channels": 4, "block_counts": [1] * 9}
THRESHOLD_NET = "test_threshold_net"


class ThresholdNet(torch.nn.Module):
    """Logits (-x, x): foreground exactly where the normalised intensity is above 0, so a test can
    predict the mask it expects and catch a misoriented export (geometry tags alone would not)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, **_):
        super().__init__()
        self.conv = torch.nn.Conv3d(in_channels, num_classes, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = -1.0
            self.conv.weight[1, 0] = 1.0
            self.conv.bias.zero_()
        self.deep_supervision = False

    def forward(self, x):
        return self.conv(x)


if THRESHOLD_NET not in NETWORKS:
    NETWORKS.register(THRESHOLD_NET)(ThresholdNet)


def brain_plans(spacing: Sequence[float] = (4.0, 4.0, 4.0), patch: Sequence[int] = (32, 32, 32),
                mirror_axes: Sequence[int] = (0, 1, 2), transpose: Sequence[int] = (0, 1, 2),
                config_name: str = "3d_fullres") -> Plans:
    backward = [list(transpose).index(i) for i in range(3)]
    config = Configuration(
        name=config_name, dim=3, spacing=list(spacing), patch_size=list(patch), batch_size=2,
        median_image_size=[48, 56, 48], normalization=["zscore"], use_mask_for_norm=[False],
        network=NetworkPlan(name="mednext", variant="S", kwargs=dict(TINY)),
        data_identifier=f"mednextPlans_{config_name}", mirror_axes=list(mirror_axes))
    return Plans(dataset_name="Dataset001_BrainMask", transpose_forward=list(transpose),
                 transpose_backward=backward, configurations={config_name: config})


def tiny_network(seed: int, in_channels: int = 1, num_classes: int = 2,
                 name: str = "mednext") -> tuple[torch.nn.Module, dict]:
    kwargs = {"in_channels": in_channels, "num_classes": num_classes}
    if name == "mednext":
        kwargs.update({"variant": "S", "deep_supervision": True, **TINY})
    torch.manual_seed(seed)
    return build_network(name, **kwargs).eval(), kwargs


def make_model_folder(results: Path, dataset_dir: Path, folds: Sequence[int] = (0,), plans: Plans | None = None,
                      trainer: str = "MedNeXtTrainer", config_name: str = "3d_fullres",
                      checkpoints: Sequence[str] = ("final",), network: str = "mednext") -> Path:
    """``results/<dataset>/<trainer>__<config>/`` with plans, dataset.json and one checkpoint per fold."""
    plans = plans or brain_plans(config_name=config_name)
    dataset = DatasetJson.load(dataset_dir / "dataset.json")
    folder = results / dataset_dir.name / f"{trainer}__{config_name}"
    folder.mkdir(parents=True, exist_ok=True)
    plans.save(folder / "plans.json")
    shutil.copy(dataset_dir / "dataset.json", folder / "dataset.json")
    for fold in folds:
        net, kwargs = tiny_network(100 + (fold if isinstance(fold, int) else 99), dataset.num_channels, name=network)
        (folder / f"fold_{fold}").mkdir(exist_ok=True)
        for chk in checkpoints:
            torch.save({"network_builder": {"name": network, "kwargs": kwargs},
                        "network_state": net.state_dict(), "epoch": 1, "trainer_name": trainer,
                        "config_name": config_name}, folder / f"fold_{fold}" / f"checkpoint_{chk}.pth")
    return folder
