"""Weighted sum of one loss over every deep-supervision output."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def deep_supervision_weights(num_outputs: int) -> list[float]:
    """MedNeXt keeps all outputs (bottleneck included): 1, 1/2, 1/4, ... normalised to sum 1.

    For 5 outputs that is 0.516, 0.258, 0.129, 0.0645, 0.0323.
    """
    if num_outputs < 1:
        raise ValueError("need at least one output")
    raw = [0.5 ** i for i in range(num_outputs)]
    total = sum(raw)
    return [w / total for w in raw]


class DeepSupervisionLoss(nn.Module):
    def __init__(self, loss: nn.Module, weights: Sequence[float] | None = None):
        super().__init__()
        self.loss = loss
        self.weights = list(weights) if weights is not None else None

    def forward(self, outputs, targets) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            outputs = [outputs]
        if isinstance(targets, torch.Tensor):
            targets = [targets]
        if len(targets) < len(outputs):
            raise ValueError(f"deep supervision: {len(outputs)} outputs but only {len(targets)} targets")
        weights = self.weights or deep_supervision_weights(len(outputs))
        if len(weights) < len(outputs):
            raise ValueError(f"deep supervision: {len(outputs)} outputs but {len(weights)} weights")
        total = None
        for w, out, tgt in zip(weights, outputs, targets):
            if w == 0:
                continue
            if out.shape[2:] != tgt.shape[2:]:
                raise ValueError(
                    f"deep supervision: output {tuple(out.shape)} does not match target {tuple(tgt.shape)}; "
                    "the network's output scales and the data pipeline's target scales disagree"
                )
            term = w * self.loss(out, tgt)
            total = term if total is None else total + term
        return total
