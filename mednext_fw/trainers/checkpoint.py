"""Checkpoint writing (atomic), RNG state capture and partial weight loading: the trainer's side.

Reading a checkpoint file and its contract belong to ``network_architectures.checkpoint``, which
inference uses too; its names are imported here so trainer code has one module to ask.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mednext_fw.io.atomic import atomic_path
from mednext_fw.network_architectures.checkpoint import CheckpointError, load_checkpoint, strip_prefixes

__all__ = ["CheckpointError", "load_checkpoint", "strip_prefixes", "unwrap", "rng_state", "set_rng_state",
           "save_checkpoint", "load_matching_weights"]


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The bare module behind DDP / torch.compile wrappers."""
    while True:
        if hasattr(module, "module") and isinstance(module.module, torch.nn.Module):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


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
