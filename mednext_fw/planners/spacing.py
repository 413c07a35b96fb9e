"""Spacing and shape rules: target spacing and axis order (nnU-Net's median / anisotropy rule), and the
shape a case gets at a spacing. The one owner: planning predicts shapes with them, preprocessing
resamples with them and records the result in each case's properties, which export reads back.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

ANISOTROPY_THRESHOLD = 3.0


def target_spacing(spacings: Sequence[Sequence[float]], shapes: Sequence[Sequence[int]],
                   anisotropy_threshold: float = ANISOTROPY_THRESHOLD) -> list[float]:
    """Per-axis median spacing, except for a strongly anisotropic, thinly sampled axis.

    When the coarsest axis is more than ``threshold`` x coarser than the others *and* has fewer than
    1/threshold as many voxels, the median would interpolate many slices out of few, so that axis
    takes the 10th percentile of its spacings instead (never finer than the other axes).
    """
    sp = np.asarray(spacings, dtype=float)
    target = np.median(sp, 0)
    median_shape = np.median(np.asarray(shapes, dtype=float), 0)
    worst = int(np.argmax(target))
    others = [a for a in range(len(target)) if a != worst]
    coarse = target[worst] > anisotropy_threshold * max(target[others])
    few = median_shape[worst] * anisotropy_threshold < min(median_shape[others])
    if coarse and few:
        value = float(np.percentile(sp[:, worst], 10))
        target[worst] = max(value, max(target[others]) + 1e-5)
    return [float(t) for t in target]


def transpose_for(spacing: Sequence[float]) -> tuple[list[int], list[int]]:
    """Move the coarsest axis to the front (forward) and back (backward)."""
    worst = int(np.argmax(spacing))
    forward = [worst] + [a for a in range(len(spacing)) if a != worst]
    backward = [forward.index(a) for a in range(len(spacing))]
    return forward, backward


def new_shape(shape: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]) -> list[int]:
    """The shape of an image of ``shape`` at ``spacing`` once resampled to ``new_spacing`` (at least 1)."""
    return [max(1, int(round(s * sp / nsp))) for s, sp, nsp in zip(shape, spacing, new_spacing)]


def resampled_spacing(dim: int, planned: Sequence[float], case_spacing: Sequence[float]) -> list[float]:
    """The spacing a case is resampled to: the plan's, except that a 2D configuration resamples
    in-plane only, so the slice axis (first, after the transpose) keeps the case's own spacing."""
    if dim == 2:
        return [float(case_spacing[0])] + [float(s) for s in planned[-2:]]
    return [float(s) for s in planned]


def median_shape_at(spacings: Sequence[Sequence[float]], shapes: Sequence[Sequence[int]],
                    new_spacing: Sequence[float]) -> list[int]:
    """Median over cases of each case's shape after resampling to ``new_spacing`` (same axis order)."""
    sizes = [new_shape(s, sp, new_spacing) for s, sp in zip(shapes, spacings)]
    return [int(v) for v in np.median(np.asarray(sizes, float), 0)]
