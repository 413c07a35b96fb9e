"""Sliding-window inference: batched tiles, Gaussian blending, accumulation on the device with a
fallback to the CPU when device memory runs out.

Memory: one fp32 accumulator of shape ``(K, *S)`` and nothing else full-size, however many folds:
every network's Gaussian-weighted logits go into the same accumulator (nnU-Net v2 also averages
logits, not probabilities, across folds). The per-voxel sum
of Gaussian weights is separable over the regular tile grid (see ``tiling.weight_sum_profiles``),
so the final normalisation is three in-place divisions by 1-D profiles instead of a second
full-size array.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from tqdm import tqdm

from mednext_fw.inference.gaussian import gaussian_importance_map
from mednext_fw.inference.tiling import compute_steps, iter_tiles, pad_to_at_least, weight_sum_profiles
from mednext_fw.inference.tta import predict_with_mirroring

log = logging.getLogger(__name__)


@dataclass
class SlidingWindowSettings:
    patch_size: Sequence[int]
    step_size: float = 0.5
    mirror_axes: Sequence[int] = ()  # spatial axes of the patch (0-based); empty = no TTA
    batch_size: int = 1  # tiles per forward pass
    batch_flips: bool = False  # TTA flips in the same forward pass
    sigma_scale: float = 1.0 / 8
    autocast: bool | None = None  # None: fp16 autocast on CUDA only
    channels_last: bool = False
    progress: bool = False


@dataclass(frozen=True)
class Placement:
    data: torch.device  # where the whole input lives
    results: torch.device  # where the accumulator lives


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def placements(device: torch.device) -> list[Placement]:
    """Everything on the device first; on an accelerator, then input and accumulator on the CPU."""
    cpu = torch.device("cpu")
    if device.type == "cpu":
        return [Placement(cpu, cpu)]
    return [Placement(device, device), Placement(cpu, cpu)]


class _Flat2D(nn.Module):
    """Runs a 2D network on ``(B, C, 1, H, W)`` tiles of a 3D volume (2D configurations)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        out = self.net(x[:, :, 0])
        if isinstance(out, (list, tuple)):
            out = out[0]
        return out[:, :, None]


def sliding_window_predict(network: nn.Module | Sequence[nn.Module], data: torch.Tensor, num_outputs: int,
                           settings: SlidingWindowSettings, device: torch.device | str = "cpu") -> torch.Tensor:
    """Gaussian-weighted mean logits of ``network`` (or the mean over several, e.g. folds) over
    ``data`` (``(C, *S)``): ``(K, *S)`` fp32.

    The result lives on the device when it fitted there, otherwise on the CPU. The networks must
    already be on ``device`` and in eval mode.
    """
    device = torch.device(device)
    networks = [network] if isinstance(network, nn.Module) else list(network)
    patch = [int(p) for p in settings.patch_size]
    mirror_axes = [int(a) for a in settings.mirror_axes]
    if len(patch) == data.ndim - 2:  # 2D network slides over the slices of a 3D volume
        networks = [_Flat2D(net) for net in networks]
        patch = [1] + patch
        mirror_axes = [a + 1 for a in mirror_axes]
    if len(patch) != data.ndim - 1:
        raise ValueError(f"patch {patch} does not fit data of shape {tuple(data.shape)}")
    attempts = placements(device)
    for i, place in enumerate(attempts):
        try:
            return _predict(networks, data, num_outputs, patch, mirror_axes, settings, device, place)
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is retried, the rest re-raised
            if not is_out_of_memory(exc) or i == len(attempts) - 1:
                raise
            log.warning("out of memory with %s; retrying with input and accumulator on the CPU", place)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    raise AssertionError("unreachable")


def _autocast(settings: SlidingWindowSettings, device: torch.device):
    enabled = settings.autocast if settings.autocast is not None else device.type == "cuda"
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


def _predict(networks, data, num_outputs, patch, mirror_axes, settings, device, place: Placement) -> torch.Tensor:
    with torch.inference_mode():
        data = data.to(place.data, dtype=torch.float32, non_blocking=True)
        data, unpad = pad_to_at_least(data, patch)
        spatial = data.shape[1:]
        steps = compute_steps(spatial, patch, settings.step_size)
        acc = torch.zeros((num_outputs, *spatial), dtype=torch.float32, device=place.results)
        weight = gaussian_importance_map(patch, settings.sigma_scale, torch.float32, device)
        memory_format = torch.channels_last_3d if len(patch) == 3 else torch.channels_last
        tiles = list(iter_tiles(steps, patch))
        bar = tqdm(total=len(tiles), desc="tiles", leave=False, disable=not settings.progress)
        for start in range(0, len(tiles), settings.batch_size):
            batch = tiles[start:start + settings.batch_size]
            x = torch.stack([data[(slice(None), *sl)] for sl in batch]).to(device, non_blocking=True)
            if settings.channels_last:
                x = x.contiguous(memory_format=memory_format)
            for network in networks:  # tiles outer, folds inner: each tile is cut and moved once
                with _autocast(settings, device):
                    y = predict_with_mirroring(network, x, mirror_axes, settings.batch_flips)
                if y.shape[1] != num_outputs:
                    raise ValueError(f"network returned {y.shape[1]} channels, expected {num_outputs}")
                y *= weight
                y = y.to(place.results)  # blocking: a non-blocking device-to-host copy may be read too early
                for tile, sl in zip(y, batch):
                    acc[(slice(None), *sl)] += tile
            bar.update(len(batch))
        bar.close()
        _normalise(acc, spatial, patch, steps, settings.sigma_scale)
        if len(networks) > 1:
            acc /= len(networks)
        return acc[unpad]


def _normalise(acc: torch.Tensor, spatial, patch, steps, sigma_scale) -> None:
    profiles = weight_sum_profiles(spatial, patch, steps, sigma_scale)
    n = len(profiles)
    for axis, prof in enumerate(profiles):
        shape = [len(prof) if a == axis else 1 for a in range(n)]
        acc /= torch.as_tensor(prof, dtype=torch.float32, device=acc.device).reshape(shape)
