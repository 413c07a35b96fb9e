"""Plug-ins: the in-box classifier trainers resolve by name, and an out-of-tree package trains by name."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from mednext_fw.preprocessing.classification_run import plan_and_preprocess_classification
from mednext_fw.trainers.classification import ClassificationTrainer
from tests.trainers.test_classification import make_synthetic_dataset

PLUGIN_MODULE = '''
"""A third-party plug-in: one network and one trainer, found through entry points only."""
import torch
from torch import nn

from mednext_fw.trainers.classification import ClassificationTrainer


class TinyNet(nn.Module):
    def __init__(self, in_channels, num_classes, width=3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).amax((2, 3)))


def create_tiny_net(in_channels=1, num_classes=2, width=3):
    return TinyNet(in_channels, num_classes, width)


class TinyPluginTrainer(ClassificationTrainer):
    trainer_name = "TinyPlugin"
    network_name = "tiny_plugin_net"
    network_preset = {"width": 5}
    settings_defaults = {**ClassificationTrainer.settings_defaults, "num_epochs": 2, "lr": 1e-2}
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "mednext-fw-tiny-plugin"
version = "0.0.1"

[project.entry-points."mednext_fw.trainers"]
TinyPlugin = "mednext_tiny_plugin:TinyPluginTrainer"

[project.entry-points."mednext_fw.networks"]
tiny_plugin_net = "mednext_tiny_plugin:create_tiny_net"

[tool.setuptools]
py-modules = ["mednext_tiny_plugin"]
'''


def test_in_box_plugins_resolve_through_entry_points():
    from importlib.metadata import entry_points

    from mednext_fw.network_architectures.registry import NETWORKS
    from mednext_fw.trainers.plugins import HoViTTrainer, XrayMoETrainer
    from mednext_fw.trainers.registry import TRAINERS

    assert {"XrayMoE", "HoViT"} <= {ep.name for ep in entry_points(group="mednext_fw.trainers")}
    assert TRAINERS.get("XrayMoE") is XrayMoETrainer and TRAINERS.get("HoViT") is HoViTTrainer
    assert issubclass(HoViTTrainer, ClassificationTrainer)
    assert callable(NETWORKS.get("xray_moe")) and callable(NETWORKS.get("hovit"))
    assert HoViTTrainer.settings_defaults["lr"] == 5e-4 and XrayMoETrainer.settings_defaults["lr"] == 2e-4
    assert XrayMoETrainer.preset_for_input(64) == {"moe_input_size": 64}


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_out_of_tree_plugin_trains_by_name(roots, tmp_path):
    pkg = tmp_path / "plugin_src"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (pkg / "mednext_tiny_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    name = make_synthetic_dataset(roots["raw"])
    env = {**os.environ, "MEDNEXT_raw": str(roots["raw"]), "MEDNEXT_preprocessed": str(roots["preprocessed"]),
           "MEDNEXT_results": str(roots["results"]), "OMP_NUM_THREADS": "1"}
    installed = _pip("install", "--no-deps", "--no-build-isolation", "-q", str(pkg))
    if installed.returncode != 0:
        pytest.fail(f"pip install of the test plug-in failed:\n{installed.stderr}")
    try:
        plan_and_preprocess_classification(name, input_size=16, verbose=False)
        # A fresh process: entry points are read once per process, as for a user's shell command.
        run = subprocess.run([sys.executable, "-m", "mednext_fw.cli.train", "2d_cls", "1", "-d", name, "-tr", "TinyPlugin",
                                    "--device", "cpu", "--no-progress", "--batch-size", "8"],
                             env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
    finally:
        removed = _pip("uninstall", "-y", "-q", "mednext-fw-tiny-plugin")
    assert removed.returncode == 0, removed.stderr
    fold = roots["results"] / name / "TinyPlugin__2d_cls" / "fold_1"
    import torch

    ckpt = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert ckpt["network_builder"] == {"name": "tiny_plugin_net",
                                       "kwargs": {"in_channels": 1, "num_classes": 2, "width": 5}}
    assert ckpt["trainer_name"] == "TinyPlugin"
    assert ckpt["epoch"] == 2 and ckpt["settings"]["lr"] == 1e-2  # the plug-in's recipe filled the flags
    assert json.loads((fold / "validation" / "summary.json").read_text())["num_samples"] == 6
    probe = "from importlib.metadata import entry_points as e; print(sorted(x.name for x in e(group='mednext_fw.trainers')))"
    left = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout
    assert "TinyPlugin" not in left and "HoViT" in left  # uninstalled cleanly
