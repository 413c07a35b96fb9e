"""Intensity normalisation: applies the scheme the plans chose for each channel (``planners.normalization_choice``)."""
from __future__ import annotations

import numpy as np

from mednext_fw.planners.normalization_choice import SCHEMES
from mednext_fw.planners.plans import IntensityStats, PlansError



def normalize_channel(x: np.ndarray, scheme: str, mask: np.ndarray | None = None,
                      stats: IntensityStats | None = None) -> np.ndarray:
    """Normalise one float32 channel in place and return it.

    ``mask`` (z-score only): statistics from the mask's voxels, everything outside set to 0.
    """
    if scheme == "zscore":
        if mask is not None:
            values = x[mask]
            mean, std = (values.mean(), values.std()) if values.size else (0.0, 1.0)
            x -= mean
            x /= max(float(std), 1e-8)
            x[~mask] = 0
        else:
            mean, std = x.mean(dtype=np.float64), x.std(dtype=np.float64)
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
