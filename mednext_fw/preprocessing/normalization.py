"""Intensity normalisation: applies the scheme the plans chose for each channel (``planners.normalization_choice``)."""
from __future__ import annotations

import numpy as np

from mednext_fw.planners.normalization_choice import SCHEMES
from mednext_fw.planners.plans import IntensityStats, PlansError

_CHUNK = 1 << 21  # voxels per float64 slice of the variance pass (16 MiB)


def mean_std(x: np.ndarray) -> tuple[np.float64, np.float64]:
    """Mean and population std of ``x`` in float64, as ``np.std`` computes them (two passes), but
    without its full-size float64 temporary: on a CT volume that temporary is twice the image."""
    flat = x.reshape(-1)
    if flat.size == 0:
        return np.float64(0.0), np.float64(1.0)
    mean = flat.mean(dtype=np.float64)
    sq = np.float64(0.0)
    for start in range(0, flat.size, _CHUNK):
        d = flat[start:start + _CHUNK].astype(np.float64) - mean
        sq += np.dot(d, d)
    return mean, np.sqrt(sq / flat.size)


def normalize_channel(x: np.ndarray, scheme: str, mask: np.ndarray | None = None,
                      stats: IntensityStats | None = None) -> np.ndarray:
    """Normalise one float32 channel in place and return it.

    ``mask`` (z-score only): statistics from the mask's voxels, everything outside set to 0.
    """
    if scheme == "zscore":
        if mask is not None:
            mean, std = mean_std(x[mask])
            x -= mean
            x /= max(float(std), 1e-8)
            x[~mask] = 0
        else:
            mean, std = mean_std(x)
            x -= mean
            x /= max(float(std), 1e-8)
    elif scheme == "ct":
        if stats is None:
            raise ValueError("CT normalisation needs the dataset's foreground intensity statistics")
        np.clip(x, stats.percentile_00_5, stats.percentile_99_5, out=x)
        x -= stats.mean
        x /= max(stats.std, 1e-8)
    elif scheme == "rescale_0_1":
        lo, hi = x.min(), x.max()
        x -= lo
        x /= max(float(hi - lo), 1e-8)
    elif scheme == "rgb_0_1":
        x /= 255.0
    elif scheme != "none":
        raise PlansError(f"plans.json: unknown normalisation scheme '{scheme}'; choose one of {SCHEMES}")
    return x


def normalize(data: np.ndarray, schemes: list[str], use_mask: list[bool], mask: np.ndarray | None,
              stats: dict[str, IntensityStats]) -> np.ndarray:
    if len(schemes) != data.shape[0]:
        raise ValueError(f"{data.shape[0]} channels but {len(schemes)} normalisation schemes in the plans")
    data = data.astype(np.float32, copy=False)
    for c, scheme in enumerate(schemes):
        normalize_channel(data[c], scheme, mask if use_mask[c] else None, stats.get(str(c)))
    return data
