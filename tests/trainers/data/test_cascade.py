"""Cascade data: previous-stage labels cropped with the target, moved to one-hot input channels,
perturbed without breaking one-hot exclusivity."""
from __future__ import annotations

import numpy as np

from mednext_fw.trainers.data.cascade import (ComponentRemoval, MorphologicalPerturbation, PreviousStageToOneHot,
                                              _StackedSeg, cascade_transforms)
from mednext_fw.trainers.data.sampler import crop_and_pad


def test_stacked_seg_crops_both_channels_with_padding():
    seg = np.arange(4 * 5 * 6, dtype=np.int16).reshape(1, 4, 5, 6)
    prev = (np.arange(4 * 5 * 6).reshape(4, 5, 6) % 3).astype(np.uint8)
    stacked = _StackedSeg(seg, prev)
    assert stacked.shape == (2, 4, 5, 6)
    bbox = [[-1, 3], [1, 4], [2, 8]]
    got = crop_and_pad(stacked, bbox, -1)
    want = crop_and_pad(np.concatenate([seg, prev[None].astype(np.int16)]), bbox, -1)
    np.testing.assert_array_equal(got, want)


def test_previous_stage_becomes_one_hot_input_channels():
    data = np.zeros((2, 1, 3, 3), np.float32)
    seg = np.zeros((2, 2, 3, 3), np.int16)
    seg[:, 1, 0, 0], seg[:, 1, 1, 1], seg[:, 1, 2, 2] = 1, 2, -1  # -1: padding from the crop
    out = PreviousStageToOneHot([1, 2])(data=data, seg=seg)
    assert out["data"].shape == (2, 3, 3, 3) and out["seg"].shape == (2, 1, 3, 3)
    assert out["data"][0, 1, 0, 0] == 1 and out["data"][0, 2, 1, 1] == 1
    assert out["data"][0, 1:, 2, 2].sum() == 0 and out["data"][:, 1:].sum() == 4


def _blobs(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = np.zeros((4, 3, 24, 24, 24), np.float32)
    data[:, 1, 4:12, 4:12, 4:12] = 1
    data[:, 2, 12:20, 8:16, 8:16] = 1
    data[:, 1, 20:22, 20:22, 20:22] = 1  # a small island for the component removal
    data[:, 0] = rng.normal(size=data[:, 0].shape)
    return data


def test_perturbations_change_labels_but_keep_them_exclusive():
    np.random.seed(0)
    data = _blobs(0)
    before = data.copy()
    for t in (MorphologicalPerturbation([1, 2], p_per_sample=1.0), ComponentRemoval([1, 2], p_per_sample=1.0)):
        data = t(data=data)["data"]
    assert not np.array_equal(data[:, 1:], before[:, 1:])
    np.testing.assert_array_equal(data[:, 0], before[:, 0])  # the image is untouched
    assert set(np.unique(data[:, 1:])) <= {0.0, 1.0}
    assert data[:, 1:].sum(1).max() <= 1  # never two labels at one voxel


def test_component_removal_deletes_a_small_component():
    np.random.seed(1)
    data = _blobs(1)[:, :2]
    out = ComponentRemoval([1], p_per_sample=1.0)(data=data.copy())["data"]
    removed = data[:, 1].sum((1, 2, 3)) - out[:, 1].sum((1, 2, 3))
    assert set(removed.tolist()) <= {8.0, 512.0} and removed.min() > 0


def test_validation_gets_one_hot_without_perturbations():
    names = [type(t).__name__ for t in cascade_transforms([1], 1, train=False)]
    assert names == ["PreviousStageToOneHot"]
    assert len(cascade_transforms([1], 1, train=True)) == 3
