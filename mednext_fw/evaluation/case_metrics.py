"""All metrics of one case: per label/region overlap and surface metrics on two label maps.

A region is a tuple of label values; its mask is the union of those labels (a plain label is a
1-tuple). Region keys in the output are ``"1"`` for ``(1,)`` and ``"(1, 2)"`` for ``(1, 2)``.
Voxels whose *reference* value is ``ignore_label`` are removed from both masks before anything is
computed, so they count neither as foreground nor as background (for the surface metrics they act
like background, which is also what MONAI's ``ignore_index`` does).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mednext_fw.evaluation.overlap import overlap_metrics
from mednext_fw.evaluation.surface import surface_metrics


def region_key(region: Sequence[int] | int) -> str:
    region = tuple(int(v) for v in np.atleast_1d(region))
    return str(region[0]) if len(region) == 1 else str(region)


def region_mask(seg: np.ndarray, region: Sequence[int]) -> np.ndarray:
    region = tuple(region)
    return seg == region[0] if len(region) == 1 else np.isin(seg, region)


def _squeeze(arr: np.ndarray, spacing: Sequence[float], name: str) -> tuple[np.ndarray, list[float]]:
    """Drop a leading channel axis and singleton spatial axes (a 2D image read as (1, 1, H, W))."""
    arr = np.asarray(arr)
    spacing = [float(s) for s in spacing]
    if arr.ndim == len(spacing) + 1 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != len(spacing):
        raise ValueError(f"{name}: array of shape {arr.shape} does not match spacing {tuple(spacing)}")
    keep = [a for a in range(arr.ndim) if arr.shape[a] != 1] or [arr.ndim - 1]
    if len(keep) < arr.ndim:
        arr = arr.reshape([arr.shape[a] for a in keep])
        spacing = [spacing[a] for a in keep]
    return arr, spacing


def compute_case_metrics(ref: np.ndarray, pred: np.ndarray, spacing: Sequence[float],
                         regions: Sequence[Sequence[int]], ignore_label: int | None = None,
                         tolerance_mm: float = 1.0, surface: bool = True) -> dict[str, dict[str, float]]:
    """``{region_key: {metric: value}}`` for two label maps of the same shape on the same grid.

    ``ref``/``pred`` may be ``(Z, Y, X)``, ``(Y, X)`` or carry a leading channel axis of size 1;
    ``spacing`` follows the spatial axes. Metrics: Dice, IoU, TP, FP, FN, TN, n_ref, n_pred,
    volume_ref, volume_pred, and with ``surface=True`` NSD (at ``tolerance_mm``), HD95 and ASSD.
    See ``overlap`` and ``surface`` for the empty-mask conventions.
    """
    if np.shape(ref) != np.shape(pred):
        raise ValueError(f"reference shape {np.shape(ref)} != prediction shape {np.shape(pred)}")
    if any(s <= 0 for s in spacing):
        raise ValueError(f"spacing must be positive, got {tuple(spacing)}")
    ref, spacing_used = _squeeze(ref, spacing, "reference")
    pred, _ = _squeeze(pred, spacing, "prediction")
    voxel_volume = float(np.prod(spacing_used))
    valid = ref != ignore_label if ignore_label is not None else None
    out: dict[str, dict[str, float]] = {}
    for region in regions:
        key = region_key(region)
        m_ref, m_pred = region_mask(ref, region), region_mask(pred, region)
        if valid is not None:
            m_ref &= valid
            m_pred &= valid
        metrics = overlap_metrics(m_ref, m_pred, voxel_volume, valid)
        if surface:
            metrics.update(surface_metrics(m_ref, m_pred, spacing_used, tolerance_mm))
        out[key] = metrics
    return out
