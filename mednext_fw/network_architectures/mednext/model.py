"""The MedNeXt encoder-decoder (reference math, channels-last compute) and its builder.

Layout: stem -> [encoder_i -> down_i] x4 -> bottleneck -> [up_i -> (+ encoder_i) -> decoder_i] x4
-> head 0. Skips are additive. Deep-supervision heads 1..4 sit on decoder 1, 2, 3 and the bottleneck
output, giving ``[full, 1/2, 1/4, 1/8, 1/16]``.

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
from mednext_fw.network_architectures.mednext.fast import to_channels_last

NUM_LEVELS = 4
DIVISOR = 2**NUM_LEVELS


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
    down_exp_r: tuple[int, ...] | None = None  # None: the reference's exp_r[1:5]; MONAI uses exp_r[0:4]
    checkpointing: bool = False

    def __post_init__(self):
        if self.dim not in (2, 3):
            raise ValueError(f"MedNeXt dim must be 2 or 3, got {self.dim}")
        if len(self.exp_r) != 9 or len(self.block_counts) != 9:
            raise ValueError("exp_r and block_counts need 9 entries [enc0..3, bottleneck, dec3..0]")
        if self.kernel_size % 2 != 1:
            raise ValueError(f"MedNeXt kernel_size must be odd, got {self.kernel_size}")
        if self.down_exp_r is not None and len(self.down_exp_r) != NUM_LEVELS:
            raise ValueError("down_exp_r needs 4 entries (one per down block)")


class MedNeXt(nn.Module):
    def __init__(self, arch: MedNeXtArch):
        super().__init__()
        self.arch = arch
        a = arch
        d, k, c = a.dim, a.kernel_size, a.n_channels
        conv = nn.Conv3d if d == 3 else nn.Conv2d
        common = dict(kernel_size=k, dim=d, norm=a.norm, grn=a.grn)
        down_r = a.down_exp_r if a.down_exp_r is not None else a.exp_r[1:5]
        self.stem = conv(a.in_channels, c, kernel_size=1)
        self.encoder = nn.ModuleList(
            nn.Sequential(*[MedNeXtBlock(c << i, c << i, a.exp_r[i], residual=a.residual, **common)
                            for _ in range(a.block_counts[i])])
            for i in range(NUM_LEVELS)
        )
        # The reference builds its first down block without GRN; kept so parameters match.
        self.down = nn.ModuleList(
            MedNeXtDownBlock(c << i, c << (i + 1), down_r[i], k, d, a.residual_up_down, a.norm, a.grn and i > 0)
            for i in range(NUM_LEVELS)
        )
        self.bottleneck = nn.Sequential(*[MedNeXtBlock(c << 4, c << 4, a.exp_r[4], residual=a.residual, **common)
                                          for _ in range(a.block_counts[4])])
        # up[i] maps level i+1 -> level i and decoder[i] works at level i; both use dec stage i's ratio.
        dec_r = [a.exp_r[8 - i] for i in range(NUM_LEVELS)]
        self.up = nn.ModuleList(
            MedNeXtUpBlock(c << (i + 1), c << i, dec_r[i], k, d, a.residual_up_down, a.norm, a.grn)
            for i in range(NUM_LEVELS)
        )
        self.decoder = nn.ModuleList(
            nn.Sequential(*[MedNeXtBlock(c << i, c << i, dec_r[i], residual=a.residual, **common)
                            for _ in range(a.block_counts[8 - i])])
            for i in range(NUM_LEVELS)
        )
        n_heads = NUM_LEVELS + 1 if a.deep_supervision else 1
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
        bad = [s for s in x.shape[2:] if s % DIVISOR]
        if bad:
            raise ValueError(f"MedNeXt needs every spatial size divisible by {DIVISOR} (4 down-samplings); "
                             f"got spatial shape {tuple(x.shape[2:])}")

    def forward(self, x: torch.Tensor):
        self.check_input(x)
        x = _pointwise(to_channels_last(x), self.stem)
        skips = []
        for i in range(NUM_LEVELS):
            x = self._stage(self.encoder[i], x)
            skips.append(x)
            x = self._run(self.down[i], x)
        x = self._stage(self.bottleneck, x)
        ds = self._deep_supervision
        outputs = [self._run(self.heads[4], x)] if ds else []
        for i in reversed(range(NUM_LEVELS)):
            x = skips.pop() + self._run(self.up[i], x)
            x = self._stage(self.decoder[i], x)
            if ds or i == 0:
                outputs.append(self._run(self.heads[i], x))
        outputs = [o.movedim(-1, 1) for o in reversed(outputs)]
        return outputs if ds else outputs[0]

