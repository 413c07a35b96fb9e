"""Where a network's forward runs at prediction time: torch (as trained), ONNX Runtime or OpenVINO.

``wrap_networks(nets, backend, device)`` returns modules the predictors call unchanged. ``auto`` is
torch, on a CPU too: measured (``benchmarks/predict_backends.py``, ``benchmarks/RESULTS.md``, quiet
2-core machine), full-width MedNeXt-S predicts a 128^3 tile end to end in 10.2 s with torch, 15.7 s with
ONNX Runtime and 18.3 s with OpenVINO (export and session inside the clock; per forward the three are
within 1%). The runtimes were ahead only while torch's CPU depthwise transposed conv was slow (now
polyphase, ``network_architectures/mednext/fast.py``). For the 2D classifiers the runtimes are 1.1-1.4x
faster per batch but spend 3-35 s building their session, so they pay off only on folders of
thousands of images: ask for them by name.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mednext_fw.inference.backends.runtimes import RUNTIMES, BackendUnavailableError, RuntimeNetwork

BACKENDS = ("auto", "torch") + RUNTIMES

__all__ = ["BACKENDS", "BackendUnavailableError", "RuntimeNetwork", "resolve_backend", "wrap_networks"]


def resolve_backend(name: str, device: torch.device | str = "cpu") -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend '{name}'; choose one of {BACKENDS}")
    device = torch.device(device)
    if name == "auto":
        return "torch"
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
