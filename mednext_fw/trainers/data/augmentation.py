"""nnU-Net's augmentation set, built from batchgenerators transforms, plus the target preparation.

Order and probabilities follow nnU-Net (see the fact sheet): spatial (rotation/scaling, no elastic),
noise, blur, brightness, contrast, low resolution, inverted gamma, gamma, mirroring; then -1 -> 0 in
the labels and the deep-supervision targets (nearest-neighbour downsampling).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from batchgenerators.transforms.abstract_transforms import AbstractTransform, Compose
from batchgenerators.transforms.color_transforms import (
    BrightnessMultiplicativeTransform,
    ContrastAugmentationTransform,
    GammaTransform,
)
from batchgenerators.transforms.noise_transforms import GaussianBlurTransform, GaussianNoiseTransform
from batchgenerators.transforms.resample_transforms import SimulateLowResolutionTransform
from batchgenerators.transforms.spatial_transforms import MirrorTransform, SpatialTransform
from batchgenerators.transforms.utility_transforms import NumpyToTensor, RemoveLabelTransform


def rotation_range(dim: int) -> float:
    """Maximum rotation (radians) per axis: +-30 degrees in 3D, +-180 degrees in 2D."""
    return math.radians(30) if dim == 3 else math.pi


def nearest_downsample(seg: np.ndarray, scale: Sequence[float]) -> np.ndarray:
    """``(B, C, *S)`` -> ``(B, C, *round(S*scale))`` by picking the voxel nearest each output centre."""
    out = seg
    for axis, s in enumerate(scale):
        n_in = seg.shape[2 + axis]
        n_out = max(1, int(round(n_in * s)))
        if n_out == n_in:
            continue
        idx = np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(int), n_in - 1)
        out = np.take(out, idx, axis=2 + axis)
    return np.ascontiguousarray(out)


class DeepSupervisionTargets(AbstractTransform):
    """``seg`` -> ``target``: a list with one label map per output scale (first = full resolution)."""

    def __init__(self, scales: Sequence[Sequence[float]] | None, input_key: str = "seg", output_key: str = "target"):
        self.scales = [tuple(s) for s in scales] if scales else None
        self.input_key = input_key
        self.output_key = output_key

    def __call__(self, **data_dict):
        seg = data_dict[self.input_key]
        if self.scales is None:
            data_dict[self.output_key] = [seg]
        else:
            data_dict[self.output_key] = [nearest_downsample(seg, s) for s in self.scales]
        return data_dict


class MaskOutsideNonzero(AbstractTransform):
    """Zero the channels normalised inside the nonzero mask wherever the label says 'outside' (-1)."""

    def __init__(self, channels: Sequence[int]):
        self.channels = list(channels)

    def __call__(self, **data_dict):
        outside = data_dict["seg"][:, 0] < 0
        for c in self.channels:
            data_dict["data"][:, c][outside] = 0
        return data_dict


def training_transforms(
    patch_size: Sequence[int],
    mirror_axes: Sequence[int],
    ds_scales: Sequence[Sequence[float]] | None,
    mask_channels: Sequence[int] = (),
    extra: Sequence[AbstractTransform] = (),
) -> Compose:
    """``extra``: run after mirroring, before the target preparation (the cascade's input channels)."""
    dim = len(patch_size)
    rot = rotation_range(dim)
    transforms: list[AbstractTransform] = [
        SpatialTransform(
            list(patch_size), patch_center_dist_from_border=None, do_elastic_deform=False,
            do_rotation=True, angle_x=(-rot, rot), angle_y=(-rot, rot) if dim == 3 else (0, 0),
            angle_z=(-rot, rot) if dim == 3 else (0, 0), p_rot_per_axis=1, p_rot_per_sample=0.2,
            do_scale=True, scale=(0.7, 1.4), p_scale_per_sample=0.2,
            border_mode_data="constant", border_cval_data=0, order_data=3,
            border_mode_seg="constant", border_cval_seg=-1, order_seg=1, random_crop=False,
        ),
        GaussianNoiseTransform(noise_variance=(0, 0.1), p_per_sample=0.1),
        GaussianBlurTransform((0.5, 1.0), different_sigma_per_channel=True, p_per_sample=0.2, p_per_channel=0.5),
        BrightnessMultiplicativeTransform(multiplier_range=(0.75, 1.25), p_per_sample=0.15),
        ContrastAugmentationTransform(contrast_range=(0.75, 1.25), p_per_sample=0.15),
        SimulateLowResolutionTransform(zoom_range=(0.5, 1), per_channel=True, p_per_channel=0.5,
                                       order_downsample=0, order_upsample=3, p_per_sample=0.25),
        GammaTransform((0.7, 1.5), invert_image=True, per_channel=True, retain_stats=True, p_per_sample=0.1),
        GammaTransform((0.7, 1.5), invert_image=False, per_channel=True, retain_stats=True, p_per_sample=0.3),
    ]
    if mirror_axes:
        transforms.append(MirrorTransform(tuple(mirror_axes)))
    transforms += list(extra) + _target_transforms(ds_scales, mask_channels)
    return Compose(transforms)


def validation_transforms(ds_scales: Sequence[Sequence[float]] | None, mask_channels: Sequence[int] = (),
                          extra: Sequence[AbstractTransform] = ()) -> Compose:
    return Compose(list(extra) + _target_transforms(ds_scales, mask_channels))


def _target_transforms(ds_scales, mask_channels) -> list[AbstractTransform]:
    out: list[AbstractTransform] = []
    if mask_channels:
        out.append(MaskOutsideNonzero(mask_channels))
    out += [
        RemoveLabelTransform(-1, 0),
        DeepSupervisionTargets(ds_scales),
        NumpyToTensor(["data", "target"], "float"),
    ]
    return out
