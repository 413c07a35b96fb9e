"""Patch sampling from preprocessed cases, with nnU-Net's deterministic foreground oversampling.

A batch of ``B`` samples forces the last ``B - round(B * (1 - p))`` samples to be centred on a stored
foreground voxel (``p`` = 1/3), the others are uniform crops. Training crops an enlarged patch so that
rotation and scaling never pull in padding; the spatial transform then cuts the final patch from its
centre. The position is drawn for the *final* patch and the enlarged box is grown around it: drawing
it for the enlarged box (nnU-Net's way) pins every patch to the image centre whenever the enlarged box
is larger than the image.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from batchgenerators.dataloading.data_loader import SlimDataLoaderBase

from mednext_fw.trainers.data.dataset import PreprocessedDataset
from mednext_fw.trainers.data.slices import pick_slice


def enlarged_patch_size(patch_size: Sequence[int], rotation_max_rad: float, scale_min: float = 0.85) -> list[int]:
    """Smallest box containing the patch rotated by up to ``rotation_max_rad`` about every axis, / ``scale_min``."""
    p = np.asarray(patch_size, dtype=float)
    if len(p) == 2:
        c, s = abs(math.cos(rotation_max_rad)), abs(math.sin(rotation_max_rad))
        rotated = np.array([c * p[0] + s * p[1], s * p[0] + c * p[1]])
        out = np.maximum(p, rotated)
    else:
        out = p.copy()
        c, s = abs(math.cos(rotation_max_rad)), abs(math.sin(rotation_max_rad))
        for a, b in ((0, 1), (0, 2), (1, 2)):  # one plane at a time, kept as the running maximum
            out[a], out[b] = max(out[a], c * out[a] + s * out[b]), max(out[b], s * out[a] + c * out[b])
    return [int(v) for v in np.round(out / scale_min)]


def force_foreground(sample_index: int, batch_size: int, oversample: float) -> bool:
    return sample_index >= round(batch_size * (1 - oversample))


def choose_bbox(
    shape: Sequence[int],
    patch: Sequence[int],
    rng: np.random.RandomState,
    class_locations: dict[str, list[list[int]]] | None = None,
    ignore_keys: Sequence[str] = (),
) -> list[list[int]]:
    """Start/stop per axis; may extend beyond the image (the crop pads). Foreground when locations given."""
    shape, patch = np.asarray(shape), np.asarray(patch)
    need = np.maximum(patch - shape, 0)  # a patch larger than the image is centred with padding
    lower = -(need // 2)
    upper = shape + need // 2 + need % 2 - patch
    centre = None
    if class_locations:
        present = [k for k, v in class_locations.items() if len(v) > 0 and k not in ignore_keys]
        if present:
            locs = class_locations[present[rng.randint(len(present))]]
            centre = np.asarray(locs[rng.randint(len(locs))])
    if centre is None:
        start = np.array([rng.randint(lo, hi + 1) for lo, hi in zip(lower, upper)])
    else:
        start = np.clip(centre - patch // 2, lower, upper)
    return [[int(s), int(s + p)] for s, p in zip(start, patch)]


def crop_and_pad(array: np.ndarray, bbox: list[list[int]], pad_value: float) -> np.ndarray:
    """Crop ``(C, *spatial)`` to ``bbox``; the out-of-image part is filled with ``pad_value``."""
    shape = array.shape[1:]
    valid = tuple(slice(max(0, a), min(s, b)) for (a, b), s in zip(bbox, shape))
    part = np.asarray(array[(slice(None),) + valid])
    pad = [(0, 0)] + [(max(0, -a), max(0, b - s)) for (a, b), s in zip(bbox, shape)]
    if any(p != (0, 0) for p in pad):
        part = np.pad(part, pad, mode="constant", constant_values=pad_value)
    return part


class PatchLoader(SlimDataLoaderBase):
    """An infinite batchgenerators loader yielding ``{"data", "seg", "keys"}`` dicts."""

    def __init__(self, dataset: PreprocessedDataset, batch_size: int, patch_size: Sequence[int],
                 oversample_foreground: float = 1 / 3, ignore_label: int | None = None, seed: int | None = None,
                 final_patch_size: Sequence[int] | None = None):
        super().__init__(dataset, batch_size, None)
        self.dataset = dataset
        self.patch_size = [int(p) for p in patch_size]  # what is cut (enlarged for training)
        self.final_patch_size = [int(p) for p in (final_patch_size or patch_size)]
        self.oversample = oversample_foreground
        self.ignore_keys = () if ignore_label is None else (str(ignore_label),)
        self.rng = np.random.RandomState(seed)

    def set_thread_id(self, thread_id):
        # each augmentation worker needs its own stream, otherwise all workers return the same batches
        super().set_thread_id(thread_id)
        self.rng = np.random.RandomState(self.rng.randint(0, 2**31 - 1) + 7919 * thread_id)

    def generate_train_batch(self) -> dict:
        ids = [self.dataset.case_ids[i] for i in self.rng.randint(len(self.dataset), size=self.batch_size)]
        data, seg = [], []
        for j, case_id in enumerate(ids):
            case = self.dataset.load(case_id)
            fg = force_foreground(j, self.batch_size, self.oversample)
            image, labels, locations = case.data, case.seg, case.class_locations if fg else None
            if len(self.final_patch_size) == image.ndim - 2:  # a 2d configuration of 3D volumes
                image, labels, locations = pick_slice(image, labels, locations, self.rng, self.ignore_keys)
            final = choose_bbox(image.shape[1:], self.final_patch_size, self.rng, locations, self.ignore_keys)
            # grow around the final box exactly as the centre crop of the spatial transform will shrink it
            bbox = [[a - (e - f) // 2, a - (e - f) // 2 + e]
                    for (a, _), e, f in zip(final, self.patch_size, self.final_patch_size)]
            data.append(crop_and_pad(image, bbox, 0.0))
            seg.append(crop_and_pad(labels, bbox, -1))
        return {"data": np.stack(data).astype(np.float32, copy=False), "seg": np.stack(seg).astype(np.int16),
                "keys": ids}
