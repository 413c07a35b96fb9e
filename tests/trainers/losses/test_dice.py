import math

import pytest
import torch

from mednext_fw.trainers.losses import SoftDiceLoss, dice_from_counts, hard_dice_counts


def test_perfect_prediction_gives_minus_one():
    target = torch.zeros(2, 3, 4, 4, 4)
    target[:, 1, :2] = 1
    target[:, 2, 2:] = 1
    target[:, 0] = 1 - target[:, 1:].sum(1)
    assert SoftDiceLoss(batch_dice=True, do_bg=False)(target, target).item() == pytest.approx(-1, abs=1e-6)
    assert SoftDiceLoss(batch_dice=False, do_bg=True)(target, target).item() == pytest.approx(-1, abs=1e-6)


def test_mask_hides_voxels():
    probs = torch.zeros(1, 2, 4, 4, 4)
    probs[:, 1] = 1  # predicts foreground everywhere
    probs[:, 0] = 0
    target = torch.zeros_like(probs)
    target[:, 1, :2] = 1
    target[:, 0, 2:] = 1
    mask = torch.zeros(1, 1, 4, 4, 4)
    mask[:, :, :2] = 1  # only the foreground half counts
    assert SoftDiceLoss()(probs, target, mask).item() == pytest.approx(-1, abs=1e-6)
    assert SoftDiceLoss()(probs, target).item() > -0.7


def test_hard_counts_labels_and_regions():
    labels = torch.tensor([0, 1, 1, 2, 2, 3]).view(1, 1, 6, 1, 1)  # 3 = ignore
    logits = torch.zeros(1, 3, 6, 1, 1)
    pred = torch.tensor([0, 1, 2, 2, 0, 1])
    logits.scatter_(1, pred.view(1, 1, 6, 1, 1), 5.0)
    c = hard_dice_counts(logits, labels, None, ignore_label=3)
    assert c[:, 0].tolist() == [1, 0, 1]  # class 1: tp at 1, fp none (index 5 ignored), fn at 2
    assert c[:, 1].tolist() == [1, 1, 1]
    d = dice_from_counts(c)
    assert d[0] == pytest.approx(2 / 3) and d[1] == pytest.approx(0.5)
    region_logits = torch.full((1, 1, 6, 1, 1), -5.0)
    region_logits[0, 0, 1:4] = 5.0
    rc = hard_dice_counts(region_logits, labels, [(1, 2)], ignore_label=3)
    assert rc[:, 0].tolist() == [3, 0, 1]


def test_absent_class_is_nan():
    assert math.isnan(dice_from_counts(torch.zeros(3, 1, dtype=torch.float64))[0])
