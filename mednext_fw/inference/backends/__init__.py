"""Where a network's forward runs at prediction time: torch (as trained), ONNX Runtime or OpenVINO.

``wrap_networks(nets, backend, device)`` returns modules the predictors call unchanged. ``auto``
takes ONNX Runtime on a CPU when it is installed, then OpenVINO, else torch. Measured here (MedNeXt-S,
``benchmarks/predict_backends.py``, ``benchmarks/RESULTS.md``): ONNX Runtime's forward was as fast as
OpenVINO's or faster, and it builds its session in about a second where OpenVINO compiles for tens of
seconds per run. On a GPU ``auto`` keeps torch (these runtimes are installed as CPU builds).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mednext_fw.inference.backends import runtimes
from mednext_fw.inference.backends.runtimes import RUNTIMES, BackendUnavailableError, RuntimeNetwork

BACKENDS = ("auto", "torch") + RUNTIMES
AUTO_ORDER = ("onnxruntime", "openvino")

__all__ = ["BACKENDS", "BackendUnavailableError", "RuntimeNetwork", "resolve_backend", "wrap_networks"]


def resolve_backend(name: str, device: torch.device | str = "cpu") -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend '{name}'; choose one of {BACKENDS}")
    device = torch.device(device)
    if name == "auto":
        if device.type != "cpu":
            return "torch"
        return next((r for r in AUTO_ORDER if runtimes.is_available(r)), "torch")
    if name != "torch" and device.type != "cpu":
        raise ValueError(f"backend '{name}' runs on the CPU; use --device cpu (or --backend torch on {device})")
    return name


def wrap_networks(networks: Sequence[nn.Module], backend: str, device: torch.device | str = "cpu",
                  threads: int | None = None) -> list[nn.Module]:
    """``networks`` with their forward moved to ``backend`` (resolved first; 'torch' returns them as they are)."""
    chosen = resolve_backend(backend, device)
    if chosen == "torch":
        return list(networks)
    return [RuntimeNetwork(net, chosen, threads) for net in networks]
