"""Reading a checkpoint and rebuilding its network: the one owner, below both trainers and inference.

A checkpoint is a plain dict: ``network_builder`` (registry name + kwargs), ``network_state`` (never
with a DDP ``module.`` or ``torch.compile`` ``_orig_mod.`` prefix; older files are stripped on read),
``epoch``, ``trainer_name``, ``config_name``, plus the resume state a trainer adds (optimiser, scaler,
schedule, logs, RNG), which only the trainer reads. Writing is the trainer's (``trainers.checkpoint``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from mednext_fw.errors import UserError
from mednext_fw.network_architectures.registry import build_network


class CheckpointError(UserError, ValueError):
    """A checkpoint file is missing, unreadable, or does not fit its network."""


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tensor names without the wrappers' prefixes (``module.`` from DDP, ``_orig_mod.`` from compile)."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    require: tuple[str, ...] = ("network_state",)) -> dict[str, Any]:
    """The checkpoint dict at ``path``; ``CheckpointError`` naming the file when it is missing or not ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        # weights_only=False: trainer checkpoints also carry numpy RNG state and plain Python objects.
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # a truncated or corrupt file must name itself
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    missing = [k for k in require if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not a mednext_fw checkpoint (missing {missing})")
    return ckpt


def network_from_checkpoint(ckpt: dict[str, Any], source: str = "checkpoint") -> nn.Module:
    """Rebuild the module from ``network_builder``, load the weights, switch deep supervision off."""
    builder = ckpt.get("network_builder")
    if not isinstance(builder, dict) or "name" not in builder:
        raise CheckpointError(f"{source}: not a mednext_fw checkpoint (missing ['network_builder'])")
    try:
        net = build_network(builder["name"], **dict(builder.get("kwargs", {})))
    except Exception as exc:
        raise CheckpointError(f"{source}: cannot rebuild network '{builder.get('name')}' ({exc})") from exc
    try:
        net.load_state_dict(strip_prefixes(ckpt["network_state"]))
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: weights do not match the network ({exc})") from exc
    if hasattr(net, "deep_supervision"):
        net.deep_supervision = False
    return net.eval()
