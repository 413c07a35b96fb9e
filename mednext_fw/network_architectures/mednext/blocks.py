"""MedNeXt blocks, computed on channels-last (N, *spatial, C) tensors.

The parameters live in ordinary ``nn.ConvNd`` / ``nn.ConvTransposeNd`` modules, so their shapes
and default initialisation are exactly the reference's (parameter counts and checkpoints match
one to one); the forward uses them functionally: 1x1 convs become GEMMs over the last dim, the
depthwise convs run on a channels-last view (see ``fast.py``), nothing is ever permuted back.

Kernel sizes and strides are per axis (an int means the same on every axis). Shape conventions
follow the reference on every stride-2 axis: the down block halves even sizes (padding k//2); the
up block's transposed conv gives 2n-1 voxels, and the result (main path and shortcut) gets one zero
plane in front of that axis to reach 2n. A stride-1 axis keeps its size and gets no plane.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from typing import Sequence

from mednext_fw.network_architectures.mednext.fast import (
    depthwise_conv,
    depthwise_conv_transpose,
    to_channels_first_view,
    to_channels_last_view,
)
from mednext_fw.network_architectures.mednext.pointwise import pointwise
from mednext_fw.network_architectures.mednext.norms import GRN, ChannelNorm

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
PerAxis = int | Sequence[int]


def per_axis(value: PerAxis, dim: int) -> tuple[int, ...]:
    out = (int(value),) * dim if isinstance(value, int) else tuple(int(v) for v in value)
    if len(out) != dim:
        raise ValueError(f"expected {dim} per-axis values, got {list(out)}")
    return out
_CONV_T = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def _pointwise(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """1x1 ``nn.ConvNd`` (weight (out, in, 1..)) applied to a channels-last tensor, with its stride."""
    return pointwise(x, conv.weight, conv.bias, conv.stride)


def _pointwise_transposed(x: torch.Tensor, conv: nn.Module, bias: bool = True) -> torch.Tensor:
    """1x1 ``nn.ConvTransposeNd`` (weight (in, out, 1..)) applied to a channels-last tensor; a stride is
    the caller's to apply (the up block adds the result on the stride grid)."""
    return pointwise(x, conv.weight.transpose(0, 1), conv.bias if bias else None)


class MedNeXtBlock(nn.Module):
    """Depthwise k_1 x .. x k_d conv -> norm -> 1x1 expand -> GELU [-> GRN] -> 1x1 compress [+ input]."""

    def __init__(self, in_channels: int, out_channels: int, exp_r: int, kernel_size: PerAxis, dim: int = 3,
                 residual: bool = True, norm: str = "group", grn: bool = False):
        super().__init__()
        if residual and in_channels != out_channels:
            raise ValueError("a residual MedNeXt block needs in_channels == out_channels")
        self.residual = residual
        self.dim = dim
        self.kernel_size = per_axis(kernel_size, dim)
        self.padding = tuple(k // 2 for k in self.kernel_size)
        self.stride = (1,) * dim
        self.dw = _CONV[dim](in_channels, in_channels, self.kernel_size, padding=self.padding, groups=in_channels)
        self.norm = ChannelNorm(in_channels, norm)
        self.expand = _CONV[dim](in_channels, exp_r * in_channels, kernel_size=1)
        self.grn = GRN(exp_r * in_channels, dim) if grn else None
        self.compress = _CONV[dim](exp_r * in_channels, out_channels, kernel_size=1)

    def _spatial(self, x: torch.Tensor) -> torch.Tensor:
        y = depthwise_conv(to_channels_first_view(x), self.dw.weight, self.dw.bias, self.stride, self.padding)
        return to_channels_last_view(y)

    def _mlp(self, h: torch.Tensor, extra_bias: torch.Tensor | None = None) -> torch.Tensor:
        z = self.norm.norm_then_linear(h, self.expand.weight.flatten(1), self.expand.bias)
        # without autograd, GELU in place saves allocating (and page-faulting) the largest tensor
        z = torch.ops.aten.gelu_(z) if not torch.is_grad_enabled() else F.gelu(z)
        if self.grn is not None:
            z = self.grn(z)
        bias = self.compress.bias if extra_bias is None else self.compress.bias + extra_bias
        return pointwise(z, self.compress.weight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._mlp(self._spatial(x))
        if not self.residual:
            return out
        return out.add_(x) if not torch.is_grad_enabled() else x + out


class MedNeXtDownBlock(MedNeXtBlock):
    """Block with a strided depthwise conv; optional 1x1 strided conv shortcut."""

    def __init__(self, in_channels: int, out_channels: int, exp_r: int, kernel_size: PerAxis, dim: int = 3,
                 residual: bool = True, norm: str = "group", grn: bool = False, stride: PerAxis = 2):
        super().__init__(in_channels, out_channels, exp_r, kernel_size, dim, False, norm, grn)
        self.stride = per_axis(stride, dim)
        self.dw = _CONV[dim](in_channels, in_channels, self.kernel_size, stride=self.stride, padding=self.padding,
                             groups=in_channels)
        self.shortcut = _CONV[dim](in_channels, out_channels, kernel_size=1, stride=self.stride) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._mlp(self._spatial(x))
        if self.shortcut is not None:
            out = out + _pointwise(x, self.shortcut)
        return out


class MedNeXtUpBlock(MedNeXtBlock):
    """Block with a strided depthwise transposed conv, front zero pad on stride-2 axes; optional
    transposed shortcut."""

    def __init__(self, in_channels: int, out_channels: int, exp_r: int, kernel_size: PerAxis, dim: int = 3,
                 residual: bool = True, norm: str = "group", grn: bool = False, stride: PerAxis = 2):
        super().__init__(in_channels, out_channels, exp_r, kernel_size, dim, False, norm, grn)
        self.stride = per_axis(stride, dim)
        self.dw = _CONV_T[dim](in_channels, in_channels, self.kernel_size, stride=self.stride, padding=self.padding,
                               groups=in_channels)
        self.shortcut = _CONV_T[dim](in_channels, out_channels, kernel_size=1, stride=self.stride) if residual else None
        # F.pad lists the last axis first; channels-last tensors end with C (never padded)
        self._pad = (0, 0) + tuple(v for s in reversed(self.stride) for v in ((1, 0) if s == 2 else (0, 0)))
        self._on_grid = (slice(None),) + tuple(slice(1, None, 2) if s == 2 else slice(None) for s in self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = depthwise_conv_transpose(to_channels_first_view(x), self.dw.weight, self.dw.bias, self.stride,
                                     self.padding)
        # The shortcut is a 1x1 strided transposed conv: its bias covers the whole grid, its weights
        # only every stride-th voxel; fold the bias into the main path.
        has_short = self.shortcut is not None
        body = self._mlp(to_channels_last_view(h), self.shortcut.bias if has_short else None)
        out = F.pad(body, self._pad)  # one zero plane in front of each stride-2 axis
        if has_short:
            out[self._on_grid] += _pointwise_transposed(x, self.shortcut, False)
        return out


class OutBlock(nn.Module):
    """Segmentation head: the reference's 1x1 transposed conv (weight (C, classes, 1..))."""

    def __init__(self, in_channels: int, num_classes: int, dim: int = 3):
        super().__init__()
        self.proj = _CONV_T[dim](in_channels, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pointwise_transposed(x, self.proj)
