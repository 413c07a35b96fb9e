"""Where a network's forward runs at prediction time: torch (as trained), ONNX Runtime or OpenVINO.

``wrap_networks(nets, backend, device)`` returns modules the predictors call unchanged.

``auto`` (``choose_auto``) is measured, not assumed (``benchmarks/predict_backends.py``,
``benchmarks/RESULTS.md``, 2-core machine). On a CPU, OpenVINO runs a full-width MedNeXt-S forward
on a 128^3 tile 1.44x faster than torch as ``mednext_predict`` runs it (3.3 vs 4.8 s, medians of 3
rounds, one process per engine, torch with its huge-page allocations; the exported graph computes up
blocks phase by phase and writes instance norms as one op, ``plain.py``), after ~7-8 s per network
of ONNX export, conversion and compilation (~1-2 s from the model cache an earlier run left,
``ov_cache``). So auto picks OpenVINO for a MedNeXt job whose forward time saved exceeds that
set-up (a whole Colin27 volume, 12 tiles: 1.26x end to end on a cold cache), and torch otherwise:
on GPUs, without the ``[deploy]`` extra, for jobs of a few passes or tiny networks, and for the 2D
classifiers (1.1-1.4x per batch, 3-35 s of set-up: ask for the runtimes by name on large folders).
ONNX Runtime (slower than torch as shipped, more memory) is there for deployment, asked for by name.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mednext_fw.inference.backends import ov_cache, runtimes
from mednext_fw.inference.backends.runtimes import RUNTIMES, BackendUnavailableError, RuntimeNetwork

BACKENDS = ("auto", "torch") + RUNTIMES
OPENVINO_SPEEDUP = 1.4  # the measured median forward ratio over torch (1.44x, see above), rounded down
OPENVINO_SETUP_S = 8.0  # per network: ONNX export + conversion + compilation of a MedNeXt-S, measured 6.8-7.7 s
OPENVINO_CACHED_SETUP_S = 2.0  # the same from the model cache (ov_cache): 1.3 s with its compiled blob

__all__ = ["BACKENDS", "BackendUnavailableError", "RuntimeNetwork", "choose_auto", "resolve_backend",
           "wrap_networks"]


def resolve_backend(name: str, device: torch.device | str = "cpu") -> str:
    """The backend a name asks for, checked against the device and the installed runtimes; ``auto``
    without a job to judge is torch."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend '{name}'; choose one of {BACKENDS}")
    device = torch.device(device)
    if name == "auto":
        return "torch"
    if name != "torch" and device.type != "cpu":
        raise ValueError(f"backend '{name}' runs on the CPU; use --device cpu (or --backend torch on {device})")
    if name != "torch":
        runtimes.require(name)
    return name


def choose_auto(networks: Sequence[nn.Module], device: torch.device | str, forward_passes: int,
                tile_seconds: float | None) -> str:
    """``auto`` for a job of ``forward_passes`` network passes of ``tile_seconds`` each (torch, measured).

    OpenVINO when it is installed, the device is a CPU, every network is a MedNeXt (what was measured)
    and the forward time it saves exceeds its set-up for every network (less for networks in the
    model cache); torch otherwise. A job too small to have been timed (``tile_seconds`` None) stays
    on torch."""
    from mednext_fw.network_architectures.mednext.model import MedNeXt

    if torch.device(device).type != "cpu" or tile_seconds is None or not runtimes.is_available("openvino"):
        return "torch"
    if not all(isinstance(net, MedNeXt) for net in networks):
        return "torch"
    saved = forward_passes * tile_seconds * (1.0 - 1.0 / OPENVINO_SPEEDUP)
    setup = sum(OPENVINO_CACHED_SETUP_S if ov_cache.is_cached(net) else OPENVINO_SETUP_S for net in networks)
    return "openvino" if saved > setup else "torch"


def wrap_networks(networks: Sequence[nn.Module], backend: str, device: torch.device | str = "cpu",
                  threads: int | None = None) -> list[nn.Module]:
    """``networks`` with their forward moved to ``backend`` (resolved first; 'torch' returns them as they are)."""
    chosen = resolve_backend(backend, device)
    if chosen == "torch":
        return list(networks)
    return [RuntimeNetwork(net, chosen, threads) for net in networks]
