"""Voxel-counting metrics of one binary region: TP/FP/FN/TN, Dice, IoU and volumes.

Conventions (stated here once, tested in tests/evaluation/test_overlap.py):

- Voxels marked ``valid == False`` (the ignore label in the reference) count nowhere.
- Reference and prediction both empty: Dice and IoU are NaN (nothing to score; nnU-Net's choice),
  so the case drops out of the nan-mean over cases.
- Exactly one of them empty: Dice = IoU = 0.
- Volumes are voxel counts times the voxel volume (mm^3; mm^2 for 2D images).
"""
from __future__ import annotations

import math

import numpy as np


def overlap_metrics(ref: np.ndarray, pred: np.ndarray, voxel_volume: float,
                    valid: np.ndarray | None = None) -> dict[str, float]:
    """``ref``/``pred``: boolean masks of equal shape; ``valid``: voxels that count (None = all)."""
    if ref.shape != pred.shape:
        raise ValueError(f"reference shape {ref.shape} != prediction shape {pred.shape}")
    if valid is not None:
        ref = ref & valid
        pred = pred & valid
        n_valid = int(np.count_nonzero(valid))
    else:
        n_valid = ref.size
    n_ref = int(np.count_nonzero(ref))
    n_pred = int(np.count_nonzero(pred))
    tp = int(np.count_nonzero(ref & pred))
    fp = n_pred - tp
    fn = n_ref - tp
    tn = n_valid - tp - fp - fn
    union = tp + fp + fn
    dice = 2 * tp / (2 * tp + fp + fn) if union else math.nan
    iou = tp / union if union else math.nan
    return {
        "Dice": float(dice),
        "IoU": float(iou),
        "TP": tp,
        "FP": fp,
        "FN": fn,
        "TN": tn,
        "n_ref": n_ref,
        "n_pred": n_pred,
        "volume_ref": n_ref * float(voxel_volume),
        "volume_pred": n_pred * float(voxel_volume),
    }
