"""Soft Dice (the loss) and hard TP/FP/FN counts (the per-epoch pseudo Dice)."""
from __future__ import annotations

import torch
from torch import nn


def _reduce_axes(ndim: int, batch_dice: bool) -> list[int]:
    spatial = list(range(2, ndim))
    return [0] + spatial if batch_dice else spatial


class SoftDiceLoss(nn.Module):
    """``-mean(Dice)`` over channels of probabilities ``(B, C, *S)`` vs a one-hot/binary target.

    ``batch_dice`` pools the whole batch into one Dice per channel (steadier when a patch misses a
    class); ``do_bg=False`` drops channel 0; ``mask`` (``(B, 1, *S)``, 1 = count) hides ignored voxels.
    """

    def __init__(self, batch_dice: bool = True, do_bg: bool = False, smooth: float = 1e-5):
        super().__init__()
        self.batch_dice = batch_dice
        self.do_bg = do_bg
        self.smooth = smooth

    def forward(self, probs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if probs.shape != target.shape:
            raise ValueError(f"Dice: prediction {tuple(probs.shape)} and target {tuple(target.shape)} differ")
        if not self.do_bg:
            probs, target = probs[:, 1:], target[:, 1:]
        if mask is not None:
            probs = probs * mask
            target = target * mask
        axes = _reduce_axes(probs.ndim, self.batch_dice)
        intersect = (probs * target).sum(axes)
        denom = probs.sum(axes) + target.sum(axes)
        dice = (2 * intersect + self.smooth) / torch.clamp(denom + self.smooth, min=1e-8)
        return -dice.mean()


@torch.no_grad()
def hard_dice_counts(
    logits: torch.Tensor, target: torch.Tensor, regions: list[tuple[int, ...]] | None, ignore_label: int | None
) -> torch.Tensor:
    """``(3, K)`` summed TP, FP, FN per foreground class (label mode) or region (region mode).

    ``target`` is the integer label map ``(B, 1, *S)``. Summing counts over many batches and only then
    dividing gives nnU-Net's pseudo Dice, which tolerates batches that lack a class.
    """
    labels = target[:, 0].long()
    valid = torch.ones_like(labels, dtype=torch.bool) if ignore_label is None else labels != ignore_label
    if regions is None:
        pred = logits.argmax(1)
        classes = range(1, logits.shape[1])
        pred_masks = [pred == c for c in classes]
        true_masks = [labels == c for c in classes]
    else:
        pred_masks = [logits[:, i] > 0 for i in range(logits.shape[1])]  # sigmoid(x) > 0.5
        true_masks = []
        for region in regions:
            m = torch.zeros_like(labels, dtype=torch.bool)
            for value in region:
                m |= labels == value
            true_masks.append(m)
    rows = []
    for p, t in zip(pred_masks, true_masks):
        p, t = p & valid, t & valid
        rows.append(torch.stack([(p & t).sum(), (p & ~t).sum(), (~p & t).sum()]))
    if not rows:
        return torch.zeros((3, 0), dtype=torch.float64, device=logits.device)
    return torch.stack(rows, 1).double()


def dice_from_counts(counts: torch.Tensor) -> list[float]:
    """Per-class Dice from summed counts; NaN for a class absent from prediction and reference."""
    tp, fp, fn = counts
    denom = 2 * tp + fp + fn
    return [float(2 * a / d) if d > 0 else float("nan") for a, d in zip(tp.tolist(), denom.tolist())]
