"""Cascade data: the previous stage's labels ride along as a second segmentation channel, so
spatial augmentation moves them exactly like the target; afterwards they become one-hot input
channels and are perturbed (nnU-Net's cascade augmentation), so the network learns to correct,
not copy, the previous stage.

Perturbations, per sample, for every label channel in random order:
- with p=0.4 a random morphological operation (dilation, erosion, opening or closing) with a ball
  of radius 1-8 voxels; voxels it adds are taken from the other label channels;
- with p=0.2 one random connected component smaller than 15% of the patch is deleted.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
from batchgenerators.transforms.abstract_transforms import AbstractTransform
from scipy import ndimage

from mednext_fw.trainers.data.dataset import CaseArrays, PreprocessedDataError, PreprocessedDataset

OPERATIONS = (ndimage.binary_dilation, ndimage.binary_erosion, ndimage.binary_opening, ndimage.binary_closing)


class _StackedSeg:
    """``(2, *S)`` view of the target ``(1, *S)`` and the previous stage ``(*S)``; a crop reads only its box."""

    def __init__(self, seg: np.ndarray, previous: np.ndarray):
        self.seg, self.previous = seg, previous
        self.shape = (2, *seg.shape[1:])
        self.ndim = len(self.shape)

    def __getitem__(self, index):
        spatial = index[1:]
        return np.concatenate([np.asarray(self.seg[(slice(None), *spatial)]),
                               np.asarray(self.previous[spatial])[None].astype(self.seg.dtype)])


class CascadeDataset(PreprocessedDataset):
    def __init__(self, folder: str | Path, case_ids: list[str], previous_folder: str | Path):
        super().__init__(folder, case_ids)
        self.previous_folder = Path(previous_folder)

    def load(self, case_id: str) -> CaseArrays:
        case = super().load(case_id)
        path = self.previous_folder / f"{case_id}.npy"
        try:
            previous = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise PreprocessedDataError(f"{path}: previous-stage prediction unreadable ({exc})") from exc
        if previous.shape != case.seg.shape[1:]:
            raise PreprocessedDataError(f"{path}: shape {previous.shape} differs from the case's {case.seg.shape[1:]}")
        return replace(case, seg=_StackedSeg(case.seg, previous))


class PreviousStageToOneHot(AbstractTransform):
    """Move segmentation channel ``channel`` into ``data`` as one channel per label."""

    def __init__(self, labels: Sequence[int], channel: int = 1):
        self.labels, self.channel = list(labels), channel

    def __call__(self, **data_dict):
        seg = data_dict["seg"]
        prev = seg[:, self.channel]
        hot = np.stack([prev == v for v in self.labels], 1).astype(data_dict["data"].dtype)
        data_dict["data"] = np.concatenate([data_dict["data"], hot], 1)
        data_dict["seg"] = np.delete(seg, self.channel, 1)
        return data_dict


def _ball(radius: int, dim: int) -> np.ndarray:
    grid = np.indices((2 * radius + 1,) * dim) - radius
    return (grid ** 2).sum(0) <= radius ** 2


class _PerChannelPerturbation(AbstractTransform):
    """Each sample, with probability ``p``, has its previous-stage channels perturbed in random order."""

    def __init__(self, channels: Sequence[int], p_per_sample: float):
        self.channels, self.p = list(channels), p_per_sample

    def __call__(self, **data_dict):
        data = data_dict["data"]
        for b in range(data.shape[0]):
            if np.random.uniform() >= self.p:
                continue
            for c in np.random.permutation(self.channels):
                self._perturb(data, b, c)
        return data_dict

    def _perturb(self, data: np.ndarray, b: int, c: int) -> None:
        raise TypeError(f"{type(self).__name__} must define _perturb")


class MorphologicalPerturbation(_PerChannelPerturbation):
    def __init__(self, channels: Sequence[int], p_per_sample: float = 0.4, radius: tuple[int, int] = (1, 8)):
        super().__init__(channels, p_per_sample)
        self.radius = radius

    def _perturb(self, data: np.ndarray, b: int, c: int) -> None:
        mask = data[b, c] > 0
        op = OPERATIONS[np.random.randint(len(OPERATIONS))]
        new = op(mask, _ball(np.random.randint(self.radius[0], self.radius[1] + 1), mask.ndim))
        added = new & ~mask
        for other in self.channels:
            if other != c:
                data[b, other][added] = 0
        data[b, c] = new


class ComponentRemoval(_PerChannelPerturbation):
    def __init__(self, channels: Sequence[int], p_per_sample: float = 0.2, max_fraction: float = 0.15):
        super().__init__(channels, p_per_sample)
        self.max_fraction = max_fraction

    def _perturb(self, data: np.ndarray, b: int, c: int) -> None:
        comp, n = ndimage.label(data[b, c] > 0)
        if n == 0:
            return
        sizes = np.bincount(comp.ravel())[1:]
        small = np.flatnonzero(sizes < self.max_fraction * comp.size) + 1
        if len(small):
            data[b, c][comp == small[np.random.randint(len(small))]] = 0


def cascade_transforms(labels: Sequence[int], num_image_channels: int, train: bool) -> list[AbstractTransform]:
    """After the spatial/intensity/mirror transforms, before the target preparation."""
    out: list[AbstractTransform] = [PreviousStageToOneHot(labels)]
    if train:
        channels = list(range(num_image_channels, num_image_channels + len(labels)))
        out += [MorphologicalPerturbation(channels), ComponentRemoval(channels)]
    return out
