"""Foreground voxel locations per class, sampled once so training can oversample foreground fast."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

MAX_SAMPLES = 10000
MIN_FRACTION = 0.01
SEED = 1234


def class_location_key(region: Sequence[int]) -> str:
    """"1" for a plain label, "1,2,3" for a region made of several label values."""
    return ",".join(str(int(v)) for v in region)


def sample_class_locations(seg: np.ndarray, regions: Sequence[Sequence[int]],
                           seed: int = SEED) -> dict[str, list[list[int]]]:
    """``seg`` ``(1, *S)`` -> ``{key: [[z, y, x], ...]}`` with max(min(10000, n), ceil(1% n)) points."""
    rng = np.random.default_rng(seed)
    flat = seg.reshape(-1)
    spatial = seg.shape[1:]
    out = {}
    for region in regions:
        hit = flat == region[0]
        for v in region[1:]:
            hit |= flat == v
        where = np.flatnonzero(hit)
        n = where.size
        k = max(min(MAX_SAMPLES, n), math.ceil(MIN_FRACTION * n))
        if k < n:
            where = np.sort(rng.choice(where, k, replace=False))
        out[class_location_key(region)] = np.stack(np.unravel_index(where, spatial), 1).tolist()
    return out
