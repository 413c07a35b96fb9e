"""Learnable block selection: a stage of N candidate blocks of which one survives.

Training: one soft Gumbel-softmax sample ``g`` (temperature ``tau``) per forward pass, shared by the
batch; the blocks run in order as ``x <- x + g_i * (block_i(x) - x)``. Each block is gated on its
residual branch, so g_i = 0 skips it and g_i = 1 is the plain block. (The public code added
``g_i * block_i(x)`` with the block's own residual inside, i.e. ``(1 + g_i) x + ...``; gating the
residual makes the pruned network a plain stack of the chosen blocks.) Eval: only the arg-max block
runs (deterministic), which is what ``prune()`` keeps.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn


class BlockStack(nn.Module):
    def __init__(self, blocks: Iterable[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return x


class GumbelBlockSelect(nn.Module):
    def __init__(self, blocks: Iterable[nn.Module], tau: float = 1.0):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        n = len(self.blocks)
        self.gate_logits = nn.Parameter(torch.full((n,), math.log(1.0 / n)))
        self.tau = tau

    def selected(self) -> int:
        return int(self.gate_logits.detach().argmax())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.blocks[self.selected()](x)
        g = F.gumbel_softmax(self.gate_logits.float(), tau=self.tau, hard=False)
        for gi, blk in zip(g, self.blocks):
            x = x + gi.to(x.dtype) * (blk(x) - x)
        return x

    def prune(self) -> BlockStack:
        """A plain stage holding only the selected block (the same module object)."""
        return BlockStack([self.blocks[self.selected()]])


def linear_temperature(step: int, total_steps: int, tau_max: float = 1.0, tau_min: float = 0.1) -> float:
    """Temperature for optimiser step ``step`` of ``total_steps``: linear from tau_max to tau_min."""
    if total_steps <= 1:
        return tau_min
    frac = min(max(step / (total_steps - 1), 0.0), 1.0)
    return tau_max + (tau_min - tau_max) * frac


def set_temperature(model: nn.Module, tau: float) -> int:
    """Set ``tau`` on every selection stage of ``model``; returns how many there were."""
    stages = [m for m in model.modules() if isinstance(m, GumbelBlockSelect)]
    for m in stages:
        m.tau = tau
    return len(stages)
