"""What the planner asks the network about memory: bytes of training a planned MedNeXt, largest batch.

The count itself belongs to the network (``network_architectures/mednext/memory.py`` walks its own
layout and topology); this module only adds what the device adds: a CUDA context and allocator
slack (``DEVICE_OVERHEAD_BYTES``), and turns the estimate into a batch size for a budget.
"""
from __future__ import annotations

import math
from typing import Sequence

from mednext_fw.network_architectures.mednext.configs import MedNeXtConfig
from mednext_fw.network_architectures.mednext.factory import mednext_arch
from mednext_fw.network_architectures.mednext.memory import activation_elements as network_activation_elements
from mednext_fw.network_architectures.mednext.memory import estimate_training_memory

DEVICE_OVERHEAD_BYTES = 1.0 * 2**30  # CUDA context and kernels, not counted by the network
DEFAULT_PRECISION = "fp16"  # CUDA trains under fp16 autocast by default


def training_memory_bytes(variant: str, patch: Sequence[int], batch_size: int, kernel_size: int = 3,
                          in_channels: int = 1, num_classes: int = 2, checkpointing: bool | None = None,
                          deep_supervision: bool = True, strides: Sequence[Sequence[int]] | None = None,
                          kernel_sizes: Sequence[Sequence[int]] | None = None,
                          precision: str = DEFAULT_PRECISION) -> float:
    """Estimated peak device memory of training MedNeXt-``variant`` on ``batch_size`` patches.

    Without ``strides``/``kernel_sizes`` the reference topology (4 x stride 2, ``kernel_size``).
    """
    arch = mednext_arch(variant, in_channels, num_classes, None if kernel_sizes else kernel_size,
                        deep_supervision=deep_supervision, dim=len(patch), checkpointing=checkpointing,
                        strides=strides, kernel_sizes=kernel_sizes)
    return DEVICE_OVERHEAD_BYTES + estimate_training_memory(arch, patch, batch_size, precision).total


def max_batch_size(variant: str, patch: Sequence[int], budget_bytes: float, **kwargs) -> int:
    """Largest batch that fits ``budget_bytes`` (0 when not even one sample fits)."""
    fixed = training_memory_bytes(variant, patch, 0, **kwargs)
    per_sample = training_memory_bytes(variant, patch, 1, **kwargs) - fixed
    return max(0, int((budget_bytes - fixed) // per_sample))


def activation_elements(cfg: MedNeXtConfig, patch: Sequence[int], in_channels: int, num_classes: int,
                        deep_supervision: bool = True, strides: Sequence[Sequence[int]] | None = None,
                        kernel_sizes: Sequence[Sequence[int]] | None = None) -> float:
    """Elements one sample of ``patch`` keeps for the backward pass (no checkpointing), as the network
    counts them (``mednext/memory.py``); ``cfg`` may carry a changed width (the CPU plan's step model)."""
    arch = mednext_arch("S", in_channels, num_classes, None if kernel_sizes else 3, deep_supervision=deep_supervision,
                        dim=len(patch), checkpointing=False, strides=strides, kernel_sizes=kernel_sizes,
                        n_channels=cfg.n_channels, exp_r=cfg.exp_r, block_counts=cfg.block_counts)
    return network_activation_elements(arch, float(math.prod(patch)), checkpointing=False)[0]
