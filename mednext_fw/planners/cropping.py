"""Crop to the nonzero region (nnU-Net's rule): the box of "any channel != 0", holes filled.

A planning rule (the fingerprint measures shapes after this crop) that preprocessing applies, so it
lives here, below both.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def nonzero_mask(data: np.ndarray) -> np.ndarray:
    """``(C, *S)`` -> boolean ``(*S)`` mask of voxels nonzero in any channel, holes filled."""
    mask = data[0] != 0
    for c in range(1, data.shape[0]):
        mask |= data[c] != 0
    return mask


def bbox_of(mask: np.ndarray) -> list[list[int]]:
    """[start, stop) per axis of the True voxels; the whole array when there are none."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append([int(hits[0]), int(hits[-1]) + 1] if hits.size else [0, mask.shape[axis]])
    return box


def crop_to_nonzero(data: np.ndarray, seg: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray | None, list[list[int]], np.ndarray]:
    """Returns cropped data, cropped seg (background outside the mask set to -1), bbox and the mask.

    Hole filling runs on the cropped mask only: the box of a mask equals the box of its filled version.
    """
    mask = nonzero_mask(data)
    box = bbox_of(mask)
    sl = tuple(slice(a, b) for a, b in box)
    mask = ndimage.binary_fill_holes(mask[sl])
    data = np.ascontiguousarray(data[(slice(None),) + sl])
    if seg is not None:
        seg = seg[(slice(None),) + sl].astype(np.int16)  # a copy, safe to modify
        seg[(seg == 0) & ~mask[None]] = -1
    return data, seg, box, mask
