"""Training memory of a MedNeXt, counted from its own layout (the planner asks this; nothing copies it).

Per sample, the tensors autograd keeps for the backward pass (element counts, from ``blocks.py``):
- block at C channels, expansion e: depthwise output (C, kept by the fused norm+1x1), the expanded
  tensor before and after GELU (e*C each), and its output (C, the next block's saved input):
  (2 + 2e) * C per voxel of its level.
- down block C -> 2C: input at the fine level (the previous block's output, not recounted);
  depthwise output (C), e*C twice and the output (2C) at the coarse level.
- up block 2C -> C: depthwise output (2C), e*2C twice at the fine level, then the skip sum (C).
- heads: the logits and, per output, the loss's softmax / log-softmax / one-hot (4 x classes).
- the stem output (C) and the input itself.
With gradient checkpointing (each block, up/down block and head) only block outputs are kept, plus
the full set of the largest block while it is recomputed.

The backward adds transient gradient tensors on top of the saved set; they peak at the largest
block: ``TRANSIENT_LARGEST`` copies of its largest tensor (the GELU gradient, the gradient arriving
and leaving the expanded tensor). Calibrated against measured CPU RSS growth, see
``benchmarks/memory_estimate.py`` and ``benchmarks/results/memory_estimate.md``.

Fixed per parameter: weights (4 B), gradients (4 B), two AdamW moments (8 B).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

from mednext_fw.network_architectures.mednext.topology import check_divisible, level_scales

if TYPE_CHECKING:
    from mednext_fw.network_architectures.mednext.model import MedNeXtArch

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
BYTES_PER_PARAMETER = {"weights": 4, "gradients": 4, "optimizer": 8}
LOSS_TENSORS_PER_CLASS = 4
TRANSIENT_LARGEST = 3.0


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes, by what holds them. ``total`` is the peak of one training step (forward + backward +
    optimizer step), without any framework context (e.g. CUDA's)."""

    weights: float
    gradients_and_optimizer: float
    activations: float  # saved for backward, all samples
    transient: float  # backward's largest temporaries, all samples

    @property
    def total(self) -> float:
        return self.weights + self.gradients_and_optimizer + self.activations + self.transient

    @property
    def growth(self) -> float:
        """What a training step adds once the network exists (what a CPU RSS measurement sees)."""
        return self.total - self.weights


def _stage_tensors(arch: "MedNeXtArch") -> list[tuple[float, float, float]]:
    """Per block: (scale of its level in voxels, elements kept per voxel, largest tensor per voxel, its
    output per voxel), with scale relative to the input's voxel count."""
    strides, _ = arch.topology
    n = len(strides)
    vox = [math.prod(s) for s in level_scales(strides)]
    c, e, counts = arch.n_channels, arch.exp_r, arch.block_counts
    down_r = arch.down_exp_r if arch.down_exp_r is not None else e[1:n + 1]
    out = []
    for lvl in range(n + 1):
        ch = c << lvl
        enc_e, enc_n = e[lvl], counts[lvl]
        out += [(vox[lvl], (2 + 2 * enc_e) * ch, enc_e * ch, ch)] * enc_n
        if lvl < n:
            dec_e, dec_n = e[2 * n - lvl], counts[2 * n - lvl]
            out += [(vox[lvl], (2 + 2 * dec_e) * ch, dec_e * ch, ch)] * dec_n
            out.append((vox[lvl + 1], (3 + 2 * down_r[lvl]) * ch, down_r[lvl] * ch, 2 * ch))  # down lvl -> lvl+1
            # up lvl+1 -> lvl: its fine-level tensors, the skip sum counted as its output
            out.append((vox[lvl], (2 + 4 * dec_e) * ch + ch, 2 * dec_e * ch, ch))
    return out


def activation_elements(arch: "MedNeXtArch", voxels: float, checkpointing: bool) -> tuple[float, float]:
    """(elements kept for backward, largest transient) for ONE sample of ``voxels`` input voxels."""
    blocks = _stage_tensors(arch)
    heads = arch.deep_supervision_scales() if arch.deep_supervision else level_scales(arch.topology[0])[:1]
    head_vox = sum(math.prod(s) for s in heads)
    fixed = voxels * (arch.in_channels + arch.n_channels + (1 + LOSS_TENSORS_PER_CLASS) * arch.num_classes * head_vox)
    if checkpointing:
        kept = sum(v * o for v, _, _, o in blocks) + max(v * (k - o) for v, k, _, o in blocks)
    else:
        kept = sum(v * k for v, k, _, _ in blocks)
    largest = max(v * big for v, _, big, _ in blocks)
    return fixed + voxels * kept, voxels * TRANSIENT_LARGEST * largest


@lru_cache(maxsize=256)
def parameter_count(arch: "MedNeXtArch") -> int:
    """Exact trainable parameters: the network built on the meta device (no memory, no init cost)."""
    import torch

    from mednext_fw.network_architectures.mednext.model import MedNeXt

    with torch.device("meta"):
        return sum(p.numel() for p in MedNeXt(arch).parameters())


def estimate_training_memory(arch: "MedNeXtArch", patch: Sequence[int], batch_size: int, precision: str = "fp16",
                             checkpointing: bool | None = None) -> MemoryEstimate:
    """Peak memory of training ``arch`` on ``batch_size`` patches of ``patch`` voxels.

    ``precision``: the autocast dtype of activations ('fp32', 'bf16', 'fp16'); ``checkpointing``
    None means the architecture's own setting.
    """
    if precision not in BYTES:
        raise ValueError(f"precision must be one of {sorted(BYTES)}, got {precision!r}")
    if len(patch) != arch.dim:
        raise ValueError(f"patch {list(patch)} has {len(patch)} axes, this MedNeXt is {arch.dim}D")
    check_divisible(patch, arch.topology[0], "patch")
    ckpt = arch.checkpointing if checkpointing is None else bool(checkpointing)
    kept, transient = activation_elements(arch, float(math.prod(patch)), ckpt)
    params = parameter_count(arch)
    per = BYTES_PER_PARAMETER
    return MemoryEstimate(
        weights=params * per["weights"],
        gradients_and_optimizer=params * (per["gradients"] + per["optimizer"]),
        activations=batch_size * kept * BYTES[precision],
        transient=batch_size * transient * BYTES[precision],
    )
