"""The MedNeXt encoder-decoder (reference math, channels-last compute) and its builder.

Layout: stem -> [encoder_i -> down_i] x n -> bottleneck -> [up_i -> (+ encoder_i) -> decoder_i] x n
-> head 0. Skips are additive. Deep-supervision heads 1..n sit on decoder 1..n-1 and the bottleneck
output; ``deep_supervision_scales`` says their size per axis (reference: ``[full, 1/2, .., 1/16]``).
The topology (``n``, per-axis strides and kernel sizes, see ``topology.py``) defaults to the
reference's: 4 down-samplings by 2 on every axis, one kernel everywhere.

Memory layout: the input may come in any layout; the model moves it to channels-last once and
every block computes on (N, *spatial, C) tensors (1x1 convs are GEMMs, depthwise convs run in
channels_last(_3d), see ``fast.py``). Outputs are returned as ordinary (N, classes, *spatial)
tensors whose memory is channels-last (``.contiguous()`` makes a channels-first copy if a caller
needs one). Callers need no ``to_fast_layout`` step: the layout is internal.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from mednext_fw.network_architectures.mednext.blocks import (
    MedNeXtBlock,
    MedNeXtDownBlock,
    MedNeXtUpBlock,
    OutBlock,
    _pointwise,
)
from mednext_fw.network_architectures.mednext.fast import to_channels_first_view, to_channels_last
from mednext_fw.network_architectures.mednext.memory import MemoryEstimate, estimate_training_memory
from mednext_fw.network_architectures.mednext.topology import (TopologyError, level_scales, normalise_topology,
                                                               reference_topology, total_strides)

NUM_LEVELS = 4  # the reference's down-samplings, the default topology
DIVISOR = 2**NUM_LEVELS  # the reference topology's input-side multiple


@dataclass(frozen=True)
class MedNeXtArch:
    in_channels: int
    num_classes: int
    n_channels: int = 32
    exp_r: tuple[int, ...] = (2,) * 9
    block_counts: tuple[int, ...] = (2,) * 9
    kernel_size: int = 3
    dim: int = 3
    deep_supervision: bool = False
    norm: str = "group"
    grn: bool = False
    residual: bool = True
    residual_up_down: bool = True
    down_exp_r: tuple[int, ...] | None = None  # None: the reference's exp_r[1:n+1]; MONAI uses exp_r[0:n]
    checkpointing: bool = False
    # Topology (see topology.py); None = the reference: 4 stages of stride 2, kernel_size everywhere.
    strides: tuple[tuple[int, ...], ...] | None = None
    kernel_sizes: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self):
        if self.dim not in (2, 3):
            raise ValueError(f"MedNeXt dim must be 2 or 3, got {self.dim}")
        if self.kernel_size % 2 != 1:
            raise ValueError(f"MedNeXt kernel_size must be odd, got {self.kernel_size}")
        strides, kernels = self.topology
        n = len(strides)
        for name in ("exp_r", "block_counts"):
            if len(getattr(self, name)) != 2 * n + 1:
                raise TopologyError(f"MedNeXt {name} needs {2 * n + 1} entries [enc0..{n - 1}, bottleneck, "
                                    f"dec{n - 1}..0] for {n} down-samplings, got {len(getattr(self, name))}")
        if self.down_exp_r is not None and len(self.down_exp_r) != n:
            raise ValueError(f"down_exp_r needs {n} entries (one per down block)")
        if self.kernel_sizes is not None and max(max(k) for k in kernels) != self.kernel_size:
            raise TopologyError(f"MedNeXt kernel_size {self.kernel_size} disagrees with kernel_sizes "
                                f"{[list(k) for k in kernels]} (kernel_size is their largest entry)")

    @property
    def topology(self) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
        """(strides per down-sampling stage, kernel sizes per level), each per axis."""
        if self.strides is None and self.kernel_sizes is None:
            return reference_topology(self.dim, self.kernel_size)
        n = len(self.strides) if self.strides is not None else len(self.kernel_sizes) - 1
        ref_s, ref_k = reference_topology(self.dim, self.kernel_size, n)
        return normalise_topology(self.strides if self.strides is not None else ref_s,
                                  self.kernel_sizes if self.kernel_sizes is not None else ref_k, self.dim)

    @property
    def num_down(self) -> int:
        return len(self.topology[0])

    def deep_supervision_scales(self) -> list[tuple[float, ...]]:
        """Per output (full resolution first, bottleneck last): its size relative to the input, per axis."""
        return level_scales(self.topology[0])


class MedNeXt(nn.Module):
    def __init__(self, arch: MedNeXtArch):
        super().__init__()
        self.arch = arch
        a = arch
        d, c = a.dim, a.n_channels
        strides, kernels = a.topology
        n = len(strides)
        self.strides, self.kernel_sizes = strides, kernels
        conv = nn.Conv3d if d == 3 else nn.Conv2d
        common = dict(dim=d, norm=a.norm, grn=a.grn)
        down_r = a.down_exp_r if a.down_exp_r is not None else a.exp_r[1:n + 1]
        dec_r = [a.exp_r[2 * n - i] for i in range(n)]  # decoder stage at level i
        self.stem = conv(a.in_channels, c, kernel_size=1)
        self.encoder = nn.ModuleList(
            nn.Sequential(*[MedNeXtBlock(c << i, c << i, a.exp_r[i], kernels[i], residual=a.residual, **common)
                            for _ in range(a.block_counts[i])])
            for i in range(n)
        )
        # The reference builds its first down block without GRN; kept so parameters match.
        self.down = nn.ModuleList(
            MedNeXtDownBlock(c << i, c << (i + 1), down_r[i], kernels[i], d, a.residual_up_down, a.norm,
                             a.grn and i > 0, stride=strides[i])
            for i in range(n)
        )
        self.bottleneck = nn.Sequential(*[MedNeXtBlock(c << n, c << n, a.exp_r[n], kernels[n], residual=a.residual,
                                                       **common) for _ in range(a.block_counts[n])])
        # up[i] maps level i+1 -> level i and decoder[i] works at level i; both use dec stage i's ratio and
        # the kernel of level i (the reference's single kernel wherever the topology is isotropic).
        self.up = nn.ModuleList(
            MedNeXtUpBlock(c << (i + 1), c << i, dec_r[i], kernels[i], d, a.residual_up_down, a.norm, a.grn,
                           stride=strides[i])
            for i in range(n)
        )
        self.decoder = nn.ModuleList(
            nn.Sequential(*[MedNeXtBlock(c << i, c << i, dec_r[i], kernels[i], residual=a.residual, **common)
                            for _ in range(a.block_counts[2 * n - i])])
            for i in range(n)
        )
        n_heads = n + 1 if a.deep_supervision else 1
        self.heads = nn.ModuleList(OutBlock(c << i, a.num_classes, d) for i in range(n_heads))
        self.has_ds_heads = a.deep_supervision
        self._deep_supervision = a.deep_supervision
        self.checkpointing = a.checkpointing

    @property
    def deep_supervision(self) -> bool:
        return self._deep_supervision

    @deep_supervision.setter
    def deep_supervision(self, value: bool) -> None:
        if value and not self.has_ds_heads:
            raise ValueError("this MedNeXt was built without deep-supervision heads (deep_supervision=False)")
        self._deep_supervision = bool(value)

    @property
    def deep_supervision_scales(self) -> list[tuple[float, ...]]:
        """Scale per axis of each output ``forward`` returns (full resolution first): the loss and the
        target down-sampling ask this instead of assuming a number of levels."""
        scales = self.arch.deep_supervision_scales()
        return scales if self._deep_supervision else scales[:1]

    @property
    def input_divisor(self) -> list[int]:
        """Every input side must be a multiple of this (per axis)."""
        return total_strides(self.strides)

    def training_memory(self, patch, batch_size: int = 2, precision: str = "fp16",
                        checkpointing: bool | None = None) -> MemoryEstimate:
        """Estimated training memory for ``batch_size`` patches (see ``memory.py``)."""
        return estimate_training_memory(self.arch, patch, batch_size, precision, checkpointing)

    def _run(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(module, x, use_reentrant=False)
        return module(x)

    def _stage(self, blocks: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        for block in blocks:
            x = self._run(block, x)
        return x

    def check_input(self, x: torch.Tensor) -> None:
        a = self.arch
        if x.dim() != a.dim + 2 or x.shape[1] != a.in_channels:
            raise ValueError(f"MedNeXt expects input of shape (N, {a.in_channels}, {'D, H, W' if a.dim == 3 else 'H, W'}), "
                             f"got {tuple(x.shape)}")
        if any(int(s) % t for s, t in zip(x.shape[2:], self.input_divisor)):
            n = len(self.strides)
            iso = self.input_divisor == [DIVISOR] * a.dim
            why = f"divisible by {DIVISOR} ({n} down-samplings)" if iso else \
                f"a multiple of the per-axis total stride {self.input_divisor} (strides {[list(s) for s in self.strides]})"
            raise ValueError(f"MedNeXt needs every spatial size {why}; got spatial shape {tuple(x.shape[2:])}")

    def forward(self, x: torch.Tensor):
        self.check_input(x)
        n = len(self.strides)
        x = _pointwise(to_channels_last(x), self.stem)
        skips = []
        for i in range(n):
            x = self._stage(self.encoder[i], x)
            skips.append(x)
            x = self._run(self.down[i], x)
        x = self._stage(self.bottleneck, x)
        ds = self._deep_supervision
        outputs = [self._run(self.heads[n], x)] if ds else []
        for i in reversed(range(n)):
            x = skips.pop() + self._run(self.up[i], x)
            x = self._stage(self.decoder[i], x)
            if ds or i == 0:
                outputs.append(self._run(self.heads[i], x))
        outputs = [to_channels_first_view(o) for o in reversed(outputs)]
        return outputs if ds else outputs[0]
