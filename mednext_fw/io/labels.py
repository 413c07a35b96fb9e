"""Label vs region handling: how many outputs a network has and the region targets training uses.

Label mode: one softmax output per label value 0..N (background included), ignore label excluded.
Region mode (nnU-Net's region-based training): one sigmoid output per region, no background
channel; a voxel belongs to a region when it carries any of the region's label values, and
regions are painted back in ``regions_class_order`` so later regions overwrite earlier ones.
"""
from __future__ import annotations

import torch

from mednext_fw.io.dataset_json import DatasetJson


def num_outputs(dataset: DatasetJson) -> int:
    if dataset.has_regions:
        return len(dataset.foreground_regions)
    return len(dataset.foreground_labels) + 1


def labels_to_region_targets(seg: torch.Tensor, dataset: DatasetJson) -> torch.Tensor:
    """``(B, 1, *S)`` integer labels -> ``(B, R, *S)`` float region masks (ignore voxels stay 0)."""
    regions = dataset.foreground_regions
    out = torch.zeros((seg.shape[0], len(regions), *seg.shape[2:]), dtype=torch.float32, device=seg.device)
    for i, region in enumerate(regions):
        mask = torch.zeros_like(seg[:, 0], dtype=torch.bool)
        for value in region:
            mask |= seg[:, 0] == value
        out[:, i] = mask
    return out
