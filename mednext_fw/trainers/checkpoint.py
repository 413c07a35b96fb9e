"""Checkpoint files: atomic writes, RNG state capture, and loading helpers.

A checkpoint is a plain dict (see the contract in the design notes): ``network_builder``,
``network_state`` (never with a DDP ``module.`` prefix), ``epoch``, ``trainer_name``,
``config_name``, plus the resume state the trainer adds (optimiser, scaler, schedule, logs, RNG).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mednext_fw.io.atomic import atomic_path

CHECKPOINT_NAMES = ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth")


class CheckpointError(ValueError):
    pass


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The bare module behind DDP / torch.compile wrappers."""
    while True:
        if hasattr(module, "module") and isinstance(module.module, torch.nn.Module):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu() if isinstance(state["torch"], torch.Tensor) else state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        # weights_only=False: our checkpoints hold numpy RNG state and plain Python objects.
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # a truncated/corrupt file must name itself
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or "network_state" not in ckpt:
        raise CheckpointError(f"{path}: not a mednext_fw checkpoint (no 'network_state' entry)")
    return ckpt


def find_resume_checkpoint(fold_dir: Path) -> Path | None:
    """Final (if the run ended) > latest > best, like nnU-Net's ``--c``."""
    for name in CHECKPOINT_NAMES:
        if (fold_dir / name).is_file():
            return fold_dir / name
    return None


def load_matching_weights(network: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Non-strict load of every key whose name and shape match; returns what was loaded and skipped."""
    state = strip_prefixes(state)
    own = network.state_dict()
    loaded, mismatched = [], []
    for key, value in state.items():
        if key in own and own[key].shape == value.shape:
            own[key] = value.to(own[key].dtype)
            loaded.append(key)
        elif key in own:
            mismatched.append(f"{key} {tuple(value.shape)} -> {tuple(own[key].shape)}")
    network.load_state_dict(own)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    return {"loaded": loaded, "shape_mismatch": mismatched, "missing": missing, "unexpected": unexpected}
