import numpy as np
import torch

from mednext_fw.trainers.data.augmentation import nearest_downsample, training_transforms, validation_transforms


def _batch(rng):
    seg = np.zeros((2, 1, 30, 30, 30), np.int16)
    seg[:, :, 8:22, 8:22, 8:22] = 1
    seg[:, :, :2] = -1
    return {"data": rng.randn(2, 1, 30, 30, 30).astype(np.float32), "seg": seg}


def test_training_pipeline_outputs_patch_and_ds_targets():
    np.random.seed(0)
    scales = [(1.0,) * 3, (0.5,) * 3, (0.25,) * 3]
    t = training_transforms([16, 16, 16], [0, 1, 2], scales)
    for _ in range(5):  # random paths differ per call
        out = t(**_batch(np.random.RandomState(1)))
        assert out["data"].shape == (2, 1, 16, 16, 16) and out["data"].dtype == torch.float32
        assert [tuple(x.shape[2:]) for x in out["target"]] == [(16,) * 3, (8,) * 3, (4,) * 3]
        assert set(torch.unique(out["target"][0]).tolist()) <= {0.0, 1.0}  # -1 mapped to 0


def test_validation_pipeline_masks_outside_and_keeps_patch():
    b = _batch(np.random.RandomState(0))
    out = validation_transforms([(1.0,) * 3], mask_channels=[0])(**b)
    assert out["data"].shape == (2, 1, 30, 30, 30)
    assert torch.all(out["data"][:, :, :2] == 0)
    assert torch.all(out["target"][0][:, :, :2] == 0)


def test_nearest_downsample_picks_existing_labels():
    seg = np.arange(8).reshape(1, 1, 8, 1, 1)
    assert nearest_downsample(seg, (0.5, 1, 1)).ravel().tolist() == [1, 3, 5, 7]
