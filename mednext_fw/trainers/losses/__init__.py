"""Segmentation losses: soft Dice, Dice+CE / Dice+BCE, deep-supervision weighting."""
from mednext_fw.trainers.losses.compound import DiceBCELoss, DiceCELoss, build_segmentation_loss
from mednext_fw.trainers.losses.deep_supervision import DeepSupervisionLoss, deep_supervision_weights
from mednext_fw.trainers.losses.dice import SoftDiceLoss, dice_from_counts, hard_dice_counts

__all__ = ["DiceBCELoss", "DiceCELoss", "DeepSupervisionLoss", "SoftDiceLoss", "build_segmentation_loss",
           "deep_supervision_weights", "dice_from_counts", "hard_dice_counts"]
