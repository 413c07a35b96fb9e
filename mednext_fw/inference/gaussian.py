"""Gaussian importance weights for sliding-window inference.

Tile borders see less context than tile centres, so overlapping predictions are blended with a
Gaussian centred on the tile (sigma = patch / 8 per axis). The map equals a Gaussian filter of a
unit impulse at ``size // 2`` (truncated at 4 sigma), which is separable: the n-d map is the outer
product of 1-D profiles. Keeping the profiles separate also lets the sum of weights over a regular
tile grid be computed per axis instead of accumulated in a full-size array.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

TRUNCATE = 4.0  # standard deviations kept, as in scipy.ndimage.gaussian_filter


def gaussian_profile(size: int, sigma_scale: float = 1.0 / 8) -> np.ndarray:
    """1-D weights of length ``size``, peak 1 at ``size // 2``; float64."""
    if size < 1:
        raise ValueError(f"patch side must be >= 1, got {size}")
    if size == 1:
        return np.ones(1)
    sigma = size * sigma_scale
    offsets = np.arange(size) - size // 2
    radius = int(TRUNCATE * sigma + 0.5)
    profile = np.exp(-0.5 * (offsets / sigma) ** 2)
    profile[np.abs(offsets) > radius] = 0.0
    return profile / profile.max()


@lru_cache(maxsize=16)
def _profiles(patch_size: tuple[int, ...], sigma_scale: float) -> tuple[np.ndarray, ...]:
    profiles = []
    for s in patch_size:
        p = gaussian_profile(s, sigma_scale)
        # A zero weight would leave voxels covered only by tile borders undefined; give them the
        # smallest positive weight instead.
        p[p == 0] = p[p > 0].min()
        profiles.append(p)
    return tuple(profiles)


def gaussian_profiles(patch_size: Sequence[int], sigma_scale: float = 1.0 / 8) -> tuple[np.ndarray, ...]:
    return tuple(p.copy() for p in _profiles(tuple(int(s) for s in patch_size), float(sigma_scale)))


def gaussian_importance_map(patch_size: Sequence[int], sigma_scale: float = 1.0 / 8,
                            dtype: torch.dtype = torch.float32,
                            device: torch.device | str = "cpu") -> torch.Tensor:
    """The n-d weight map of shape ``patch_size``: maximum 1, strictly positive."""
    out = None
    for axis, p in enumerate(gaussian_profiles(patch_size, sigma_scale)):
        shape = [1] * len(patch_size)
        shape[axis] = len(p)
        t = torch.from_numpy(p).reshape(shape)
        out = t if out is None else out * t
    return out.to(device=device, dtype=dtype)
