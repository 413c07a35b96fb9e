"""Mirroring test-time augmentation: average the logits over every flip combination of the axes
the network was trained with mirroring on (2^n passes, the unflipped one included)."""
from __future__ import annotations

import itertools
from typing import Sequence

import torch
from torch import nn


def mirror_combinations(mirror_axes: Sequence[int]) -> list[tuple[int, ...]]:
    """All subsets of ``mirror_axes`` (spatial, 0-based), the empty one first."""
    axes = sorted(set(int(a) for a in mirror_axes))
    return [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]


def forward_logits(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = network(x)
    if isinstance(out, (list, tuple)):  # a network left in deep-supervision mode: full resolution first
        out = out[0]
    return out


def predict_with_mirroring(network: nn.Module, x: torch.Tensor, mirror_axes: Sequence[int] = (),
                           batch_flips: bool = False) -> torch.Tensor:
    """Mean fp32 logits of ``network`` over the flips of ``x`` (``(B, C, *S)``) along ``mirror_axes``.

    ``batch_flips`` runs all flipped copies as one batch (faster on GPUs, more activation memory).
    """
    combos = mirror_combinations(mirror_axes)
    dims = [tuple(a + 2 for a in c) for c in combos]
    if batch_flips and len(combos) > 1:
        stacked = torch.cat([x.flip(d) if d else x for d in dims])
        out = forward_logits(network, stacked).float()
        chunks = out.split(x.shape[0])
        total = chunks[0].clone()
        for d, chunk in zip(dims[1:], chunks[1:]):
            total += chunk.flip(d)
    else:
        total = forward_logits(network, x).float()
        for d in dims[1:]:
            total += forward_logits(network, x.flip(d)).float().flip(d)
    if len(combos) > 1:
        total /= len(combos)
    return total
