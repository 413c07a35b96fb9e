"""Training-memory estimate of a MedNeXt variant for one patch (used to pick patch, batch and variant).

Counted per voxel, the tensors autograd keeps for the backward pass of each block:
- MedNeXt block with C channels and expansion e: depthwise-conv input, norm input, norm output (C each),
  GELU input and output (e*C each): (3 + 2e) * C.
- down block (C -> 2C, expansion e): its full-resolution input (C) plus, at half resolution,
  norm input/output (C each) and GELU input/output (e*C each).
- up block (2C -> C, expansion e): its low-resolution input (2C) plus, at full resolution,
  norm input/output (2C each) and GELU input/output (e*2C each).
- stem input, and per output head the logits plus two loss-side tensors of the same size (softmax,
  one-hot target): 3 * num_classes.
Elements are stored in half precision (autocast) and inflated by ``OVERHEAD_FACTOR`` for
float32 normalisation statistics, allocator fragmentation and convolution workspaces. Gradient
checkpointing keeps only block inputs and recomputes the rest: counted as half.
Fixed costs: ``CONTEXT_BYTES`` (CUDA context, kernels) and 16 bytes per parameter (fp32 weights,
gradients and two AdamW moments).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mednext_fw.network_architectures.mednext.configs import MedNeXtConfig, get_variant

BYTES_PER_ELEMENT = 2
OVERHEAD_FACTOR = 1.3
CHECKPOINT_FACTOR = 0.5
CONTEXT_BYTES = 1.0 * 2**30
BYTES_PER_PARAMETER = 16
NUM_STAGES = 5  # four down-samplings


def activation_elements(cfg: MedNeXtConfig, patch: Sequence[int], in_channels: int, num_classes: int,
                        deep_supervision: bool = True) -> float:
    """Elements kept for backward for ONE sample of ``patch`` (any number of spatial dims)."""
    voxels = [float(np.prod(patch)) / (2 ** len(patch)) ** s for s in range(NUM_STAGES)]
    c0, e, n = cfg.n_channels, cfg.exp_r, cfg.block_counts
    total = in_channels * voxels[0]
    for s in range(NUM_STAGES):
        c = c0 * 2 ** s
        enc = n[s] * (3 + 2 * e[s]) * c * voxels[s]
        dec = 0.0 if s == NUM_STAGES - 1 else n[8 - s] * (3 + 2 * e[8 - s]) * c * voxels[s]
        total += enc + dec
        if s < NUM_STAGES - 1:
            e_down, e_up = e[s + 1], e[8 - s]
            total += c * voxels[s] + (2 + 2 * e_down) * c * voxels[s + 1]  # down block s -> s+1
            total += 2 * c * voxels[s + 1] + (2 + 2 * e_up) * 2 * c * voxels[s]  # up block s+1 -> s
    heads = range(NUM_STAGES) if deep_supervision else range(1)
    total += sum(3 * num_classes * voxels[s] for s in heads)
    return total


def parameter_count(cfg: MedNeXtConfig, kernel_size: int, dim: int, in_channels: int, num_classes: int) -> int:
    """Approximate trainable parameters (depthwise k^dim + two 1x1 expansions per block)."""
    k = kernel_size ** dim
    total = in_channels * cfg.n_channels
    for i, (e, nb) in enumerate(zip(cfg.exp_r, cfg.block_counts)):
        c = cfg.n_channels * 2 ** (i if i <= 4 else 8 - i)
        total += nb * (c * k + 2 * e * c * c)
        if i < 4:  # down block i -> i+1 and the matching up block
            total += 2 * (c * k + e * c * c + e * c * 2 * c + 2 * c * c)
    return int(total + 5 * num_classes * cfg.n_channels * 16)


def training_memory_bytes(variant: str, patch: Sequence[int], batch_size: int, kernel_size: int = 3,
                          in_channels: int = 1, num_classes: int = 2, checkpointing: bool | None = None,
                          deep_supervision: bool = True) -> float:
    """Estimated peak GPU memory of training ``variant`` on ``batch_size`` patches."""
    cfg = get_variant(variant)
    ckpt = cfg.checkpointing if checkpointing is None else checkpointing
    per_sample = activation_elements(cfg, patch, in_channels, num_classes, deep_supervision)
    per_sample *= BYTES_PER_ELEMENT * OVERHEAD_FACTOR * (CHECKPOINT_FACTOR if ckpt else 1.0)
    fixed = CONTEXT_BYTES + BYTES_PER_PARAMETER * parameter_count(cfg, kernel_size, len(patch), in_channels,
                                                                    num_classes)
    return fixed + batch_size * per_sample


def max_batch_size(variant: str, patch: Sequence[int], budget_bytes: float, **kwargs) -> int:
    """Largest batch that fits ``budget_bytes`` (0 when not even one sample fits)."""
    fixed = training_memory_bytes(variant, patch, 0, **kwargs)
    per_sample = training_memory_bytes(variant, patch, 1, **kwargs) - fixed
    return max(0, int((budget_bytes - fixed) // per_sample))
