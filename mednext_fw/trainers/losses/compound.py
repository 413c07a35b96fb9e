"""Dice + cross-entropy for label maps, Dice + BCE for regions; both mask the ignore label."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.labels import labels_to_region_targets
from mednext_fw.trainers.losses.dice import SoftDiceLoss


class DiceCELoss(nn.Module):
    """Softmax output ``(B, K, *S)`` vs integer labels ``(B, 1, *S)``; background excluded from Dice."""

    def __init__(self, batch_dice: bool = True, ignore_label: int | None = None, smooth: float = 1e-5,
                 weight_ce: float = 1.0, weight_dice: float = 1.0):
        super().__init__()
        self.dice = SoftDiceLoss(batch_dice=batch_dice, do_bg=False, smooth=smooth)
        self.ignore_label = ignore_label
        self.weight_ce = weight_ce
        self.weight_dice = weight_dice

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels = target[:, 0].long()
        mask = None
        if self.ignore_label is not None:
            valid = labels != self.ignore_label
            mask = valid[:, None].to(logits.dtype)
            labels = torch.where(valid, labels, torch.zeros_like(labels))
            ce_all = F.cross_entropy(logits, labels, reduction="none")
            # mean over counted voxels; an all-ignored batch contributes 0 instead of NaN
            ce = (ce_all * valid).sum() / valid.sum().clamp(min=1)
        else:
            ce = F.cross_entropy(logits, labels)
        probs = torch.softmax(logits.float(), 1)
        onehot = F.one_hot(labels, logits.shape[1]).movedim(-1, 1).to(probs.dtype)
        dice = self.dice(probs, onehot, mask)
        return self.weight_ce * ce + self.weight_dice * dice


class DiceBCELoss(nn.Module):
    """Sigmoid outputs, one per region ``(B, R, *S)``, vs integer labels turned into region masks."""

    def __init__(self, dataset: DatasetJson, batch_dice: bool = True, smooth: float = 1e-5,
                 weight_bce: float = 1.0, weight_dice: float = 1.0):
        super().__init__()
        self.dataset = dataset
        self.ignore_label = dataset.ignore_label
        self.dice = SoftDiceLoss(batch_dice=batch_dice, do_bg=True, smooth=smooth)  # regions have no background
        self.weight_bce = weight_bce
        self.weight_dice = weight_dice

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        regions = labels_to_region_targets(target.long(), self.dataset).to(logits.dtype)
        if self.ignore_label is not None:
            valid = (target.long() != self.ignore_label).to(logits.dtype)
            bce_all = F.binary_cross_entropy_with_logits(logits, regions, reduction="none")
            bce = (bce_all * valid).sum() / (valid.sum() * logits.shape[1]).clamp(min=1)
            mask = valid
        else:
            bce = F.binary_cross_entropy_with_logits(logits, regions)
            mask = None
        dice = self.dice(torch.sigmoid(logits.float()), regions.float(), mask)
        return self.weight_bce * bce + self.weight_dice * dice


def build_segmentation_loss(dataset: DatasetJson, batch_dice: bool) -> nn.Module:
    if dataset.has_regions:
        return DiceBCELoss(dataset, batch_dice=batch_dice)
    return DiceCELoss(batch_dice=batch_dice, ignore_label=dataset.ignore_label)
