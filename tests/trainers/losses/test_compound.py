import pytest
import torch
import torch.nn.functional as F

from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.trainers.losses import DiceBCELoss, DiceCELoss, build_segmentation_loss


def _ds(labels, order=None):
    d = {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": 1, "file_ending": ".nii.gz"}
    if order:
        d["regions_class_order"] = order
    return DatasetJson.from_dict(d)


def test_ignore_label_does_not_change_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 6, 6)
    target = torch.randint(0, 3, (2, 1, 6, 6, 6))
    loss = DiceCELoss(ignore_label=3)
    base = loss(logits, target)
    t2 = target.clone()
    t2[:, :, :2] = 3  # ignore a slab: only the rest should count
    masked = loss(logits, t2)
    ref = DiceCELoss()(logits[:, :, 2:], target[:, :, 2:])
    assert masked.item() == pytest.approx(ref.item(), rel=1e-5)
    assert masked.item() != pytest.approx(base.item(), rel=1e-5)
    # changing the logits inside the ignored slab changes nothing
    logits2 = logits.clone()
    logits2[:, :, :2] = torch.randn_like(logits2[:, :, :2]) * 10
    assert loss(logits2, t2).item() == pytest.approx(masked.item(), rel=1e-5)


def test_ce_part_matches_torch_and_background_excluded_from_dice():
    logits = torch.randn(1, 2, 4, 4, 4)
    target = torch.randint(0, 2, (1, 1, 4, 4, 4))
    ce_only = DiceCELoss(weight_dice=0)(logits, target)
    assert ce_only.item() == pytest.approx(F.cross_entropy(logits, target[:, 0]).item(), rel=1e-6)
    # perfect foreground: Dice term -1 whatever the background channel does
    perfect = torch.where(target.bool(), 20.0, -20.0).float()
    logits = torch.cat([torch.zeros_like(perfect), perfect], 1)
    assert DiceCELoss(weight_ce=0)(logits, target).item() == pytest.approx(-1, abs=1e-4)


def test_regions_use_bce_and_sigmoid_dice():
    ds = _ds({"background": 0, "whole": [1, 2], "core": 2, "ignore": 3}, order=[1, 2])
    loss = build_segmentation_loss(ds, batch_dice=True)
    assert isinstance(loss, DiceBCELoss)
    target = torch.tensor([0, 1, 2, 2, 3, 0]).view(1, 1, 6, 1, 1)
    whole = torch.tensor([0, 1, 1, 1, 0, 0.0])
    core = torch.tensor([0, 0, 1, 1, 0, 0.0])
    logits = (torch.stack([whole, core]) * 40 - 20).view(1, 2, 6, 1, 1)
    logits[:, :, 4] = 20.0  # wrong on the ignored voxel: must not matter
    assert loss(logits, target).item() == pytest.approx(-1, abs=1e-4)
    bad = -logits
    assert loss(bad, target).item() > 1.0


def test_label_mode_for_plain_labels():
    assert isinstance(build_segmentation_loss(_ds({"background": 0, "a": 1}), True), DiceCELoss)
