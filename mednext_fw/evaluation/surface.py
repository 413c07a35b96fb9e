"""Surface metrics of one binary region: normalised surface Dice (NSD), HD95 and ASSD.

Definitions (the same as MONAI's ``compute_surface_dice`` / ``compute_hausdorff_distance`` /
``compute_average_surface_distance`` with ``use_subvoxels=False``, Euclidean metric, checked in
tests/evaluation/test_surface_vs_monai.py):

- **Surface voxels** of a mask are its foreground voxels with at least one background neighbour in
  the 6-neighbourhood (4 in 2D). Outside the image counts as background, so foreground on the
  image border is surface. The surface "area" is the number of surface voxels (not DeepMind's
  sub-voxel surface elements).
- **Distances** go from each surface voxel centre of one mask to the nearest surface voxel centre of
  the other, in mm (anisotropic spacing honoured). Coinciding surface voxels have distance 0.
- **NSD** = (#ref surface voxels within ``tolerance_mm`` of the pred surface + #pred surface voxels
  within ``tolerance_mm`` of the ref surface) / (#ref + #pred surface voxels); "within" is ``<=``.
- **HD95** = max of the two directed 95th percentiles (linear interpolation between order
  statistics, as ``numpy.percentile``/``torch.quantile``).
- **ASSD** = mean of all distances of both directions pooled.

Empty masks: both empty -> NSD, HD95 and ASSD are NaN. Exactly one empty -> NSD = 0 and
HD95 = ASSD = +inf (the distance to an empty surface is unbounded). Means over cases therefore
report inf for a label any case missed completely, which is deliberate: a missed structure is not
hidden by the average. (MONAI agrees except for the percentile Hausdorff distance with one mask
empty, where its float32 interpolation of inf - inf returns NaN.) MONAI also interpolates the
percentile in float32, so its HD95 can differ from ours by ~1e-4 of the gap between two neighbouring
distances; NSD agrees to float32 rounding.

Speed: everything runs on the bounding box of the union of both masks plus a margin of zeros. The
nearest-surface search first tries voxel offsets inside a small ball, in order of increasing
physical length, so the first hit is the exact nearest distance; only surface voxels with no
partner inside the ball go to an exact k-d tree query. Typical segmentation errors are a few
voxels, so nearly every voxel resolves in the ball search.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree

# Number of voxel offsets searched before the k-d tree fallback; ~4 voxels radius in 3D.
_BALL_OFFSETS = 256
# Offsets are tried in batches: tiny ones first (most voxels resolve at the shortest offsets),
# then fixed-size ones so the (points x offsets) index array stays small.
_FIRST_BATCHES = (1, 8)
_BATCH = 32


def _surface(padded: np.ndarray) -> np.ndarray:
    """Surface voxels of a zero-padded boolean mask (the outermost layer must be False)."""
    inner = tuple(slice(1, -1) for _ in range(padded.ndim))
    interior = padded[inner].copy()
    for axis in range(padded.ndim):
        for lo, hi in ((0, -2), (2, None)):
            sl = list(inner)
            sl[axis] = slice(lo, hi)
            interior &= padded[tuple(sl)]
    surface = padded.copy()
    surface[inner] &= ~interior
    return surface


def _ball_offsets(spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer offsets (n, ndim) sorted by physical length, their lengths, and the per-axis reach."""
    # Radius so that the ball holds about _BALL_OFFSETS grid points.
    unit_ball = math.pi ** (len(spacing) / 2) / math.gamma(len(spacing) / 2 + 1)
    radius = (_BALL_OFFSETS * float(np.prod(spacing)) / unit_ball) ** (1 / len(spacing))
    reach = np.maximum(1, np.floor(radius / spacing).astype(int))
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    offsets = np.stack([g.ravel() for g in grids], 1)
    lengths = np.sqrt(((offsets * spacing) ** 2).sum(1))
    keep = lengths <= radius
    offsets, lengths = offsets[keep], lengths[keep]
    order = np.argsort(lengths, kind="stable")
    return offsets[order], lengths[order], reach


def _nearest_distances(points: np.ndarray, target: np.ndarray, offsets_flat: np.ndarray,
                       lengths: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Distance (mm) from each flat index in ``points`` to the nearest True voxel of ``target``."""
    target_flat = target.ravel()
    dist = np.full(points.size, np.inf)
    remaining = np.arange(points.size)
    n_off = offsets_flat.size
    bounds = sorted({min(b, n_off) for b in _FIRST_BATCHES} | set(range(_FIRST_BATCHES[-1] + _BATCH, n_off, _BATCH))
                    | {n_off})
    start = 0
    for stop in bounds:
        if remaining.size == 0:
            break
        if stop <= start:
            continue
        hits = target_flat[points[remaining, None] + offsets_flat[None, start:stop]]
        found = hits.any(1)
        first = hits.argmax(1)
        dist[remaining[found]] = lengths[start + first[found]]
        remaining = remaining[~found]
        start = stop
    if remaining.size:
        target_mm = np.argwhere(target) * spacing
        query_mm = np.stack(np.unravel_index(points[remaining], target.shape), 1) * spacing
        dist[remaining] = cKDTree(target_mm, leafsize=32).query(query_mm, k=1)[0]
    return dist


def surface_distances(ref: np.ndarray, pred: np.ndarray,
                      spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(ref surface -> pred surface, pred surface -> ref surface) distances in mm; both masks non-empty."""
    spacing = np.asarray(spacing, dtype=np.float64)
    union = ref | pred
    box = []
    for axis in range(ref.ndim):
        other = tuple(a for a in range(ref.ndim) if a != axis)
        nz = np.flatnonzero(union.any(axis=other))
        box.append(slice(nz[0], nz[-1] + 1))
    offsets, lengths, reach = _ball_offsets(spacing)
    pad = [(int(r), int(r)) for r in reach]  # reach >= 1 also gives the zero border _surface needs
    surf_ref = _surface(np.pad(ref[tuple(box)], pad))
    surf_pred = _surface(np.pad(pred[tuple(box)], pad))
    strides = np.array([int(np.prod(surf_ref.shape[a + 1:])) for a in range(ref.ndim)])
    offsets_flat = offsets @ strides
    idx_ref, idx_pred = np.flatnonzero(surf_ref), np.flatnonzero(surf_pred)
    d_ref = _nearest_distances(idx_ref, surf_pred, offsets_flat, lengths, spacing)
    d_pred = _nearest_distances(idx_pred, surf_ref, offsets_flat, lengths, spacing)
    return d_ref, d_pred


def surface_metrics(ref: np.ndarray, pred: np.ndarray, spacing: Sequence[float],
                    tolerance_mm: float = 1.0, percentile: float = 95.0) -> dict[str, float]:
    """NSD at ``tolerance_mm``, HD at ``percentile`` (key ``HD95`` for 95) and ASSD of two boolean masks."""
    if ref.shape != pred.shape:
        raise ValueError(f"reference shape {ref.shape} != prediction shape {pred.shape}")
    if len(spacing) != ref.ndim:
        raise ValueError(f"spacing {tuple(spacing)} does not match a {ref.ndim}D mask")
    if not (tolerance_mm >= 0 and math.isfinite(tolerance_mm)):
        raise ValueError(f"tolerance_mm must be finite and >= 0, got {tolerance_mm}")
    hd_key = f"HD{percentile:g}"
    has_ref, has_pred = bool(ref.any()), bool(pred.any())
    if not has_ref and not has_pred:
        return {"NSD": math.nan, hd_key: math.nan, "ASSD": math.nan}
    if not has_ref or not has_pred:
        return {"NSD": 0.0, hd_key: math.inf, "ASSD": math.inf}
    d_ref, d_pred = surface_distances(ref, pred, spacing)
    within = np.count_nonzero(d_ref <= tolerance_mm) + np.count_nonzero(d_pred <= tolerance_mm)
    total = d_ref.size + d_pred.size
    hd = max(np.percentile(d_ref, percentile), np.percentile(d_pred, percentile))
    assd = (d_ref.sum() + d_pred.sum()) / total
    return {"NSD": float(within / total), hd_key: float(hd), "ASSD": float(assd)}
