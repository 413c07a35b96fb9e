"""Where the tiles of a sliding window go, and padding images up to at least one tile."""
from __future__ import annotations

import itertools
import math
from typing import Iterator, Sequence

import numpy as np
import torch

from mednext_fw.inference.gaussian import gaussian_profiles


def compute_steps(image_size: Sequence[int], patch_size: Sequence[int], step_size: float = 0.5) -> list[list[int]]:
    """Tile start positions per axis.

    Per axis: as many tiles as a stride of ``patch * step_size`` needs to reach the end,
    ``ceil((size - patch) / (patch * step_size)) + 1``, then spread evenly from 0 to size - patch
    (so the stride is at most the requested one and the last tile ends at the border).
    """
    if not 0 < step_size <= 1:
        raise ValueError(f"step_size must be in (0, 1], got {step_size}")
    if len(image_size) != len(patch_size):
        raise ValueError(f"image {tuple(image_size)} and patch {tuple(patch_size)} differ in dimensionality")
    steps = []
    for size, patch in zip(image_size, patch_size):
        if size < patch:
            raise ValueError(f"image side {size} is smaller than the patch side {patch}; pad first")
        n = math.ceil((size - patch) / (patch * step_size)) + 1
        if n == 1:
            steps.append([0])
            continue
        stride = (size - patch) / (n - 1)
        steps.append([int(round(stride * i)) for i in range(n)])  # round half to even, like numpy
    return steps


def iter_tiles(steps: list[list[int]], patch_size: Sequence[int]) -> Iterator[tuple[slice, ...]]:
    for starts in itertools.product(*steps):
        yield tuple(slice(s, s + p) for s, p in zip(starts, patch_size))


def num_tiles(steps: list[list[int]]) -> int:
    return math.prod(len(s) for s in steps)


def weight_sum_profiles(image_size: Sequence[int], patch_size: Sequence[int], steps: list[list[int]],
                        sigma_scale: float = 1.0 / 8) -> list[np.ndarray]:
    """Per-axis sums of the Gaussian profiles over all tile positions.

    The tile grid is a Cartesian product and the Gaussian is separable, so the total weight each
    voxel receives is the product of these 1-D sums; no full-size weight array is needed.
    """
    out = []
    for size, profile, axis_steps in zip(image_size, gaussian_profiles(patch_size, sigma_scale), steps):
        acc = np.zeros(size)
        for s in axis_steps:
            acc[s:s + len(profile)] += profile
        out.append(acc)
    return out


def pad_to_at_least(data: torch.Tensor, min_spatial: Sequence[int]) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Zero-pad the spatial axes of ``(C, *S)`` to at least ``min_spatial``, split evenly (extra voxel at
    the end). Returns the padded tensor (``data`` itself when no padding is needed) and the slicer
    that recovers the original region."""
    spatial = data.shape[1:]
    before, after = [], []
    for s, m in zip(spatial, min_spatial):
        diff = max(0, int(m) - s)
        before.append(diff // 2)
        after.append(diff - diff // 2)
    slicer = (slice(None),) + tuple(slice(b, b + s) for b, s in zip(before, spatial))
    if not any(before) and not any(after):
        return data, slicer
    pad = []
    for b, a in zip(reversed(before), reversed(after)):  # F.pad wants the last axis first
        pad += [b, a]
    return torch.nn.functional.pad(data, pad, mode="constant", value=0.0), slicer
