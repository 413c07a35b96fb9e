"""Building blocks shared by the classifiers: ConvNeXt, ResNet-18 and LeViT-style parts.

Every block with a BatchNorm can be folded into the preceding linear map for inference
(:func:`fuse_linear_bn`, :func:`fuse_conv_bn`); HoViT uses that in ``fuse()`` / ``prune()``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7 conv -> LayerNorm -> Linear(4x) -> GELU -> Linear -> layer scale, plus identity."""

    def __init__(self, dim: int, eps: float = 1e-6, layer_scale: float = 1e-6):
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(dim, 4 * dim))
        self.mlp.add_module("act", nn.GELU())
        self.mlp.add_module("fc2", nn.Linear(4 * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_dw(x).permute(0, 2, 3, 1)  # the MLP is two Linears over channels-last pixels
        y = self.mlp(self.norm(y)) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtStage(nn.Module):
    """Optional 2x2 stride-2 downsampling (LayerNorm2d + conv) then ``depth`` blocks."""

    def __init__(self, in_dim: int, dim: int, depth: int, downsample: bool, eps: float = 1e-6):
        super().__init__()
        self.downsample = (nn.Sequential(LayerNorm2d(in_dim, eps=eps), nn.Conv2d(in_dim, dim, 2, stride=2))
                           if downsample else nn.Identity())
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim, eps) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


def convnext_stem(in_chans: int, dim: int, eps: float = 1e-6) -> nn.Sequential:
    """4x4 stride-4 patchify conv + LayerNorm2d."""
    return nn.Sequential(nn.Conv2d(in_chans, dim, 4, stride=4), LayerNorm2d(dim, eps=eps))


class BasicBlock(nn.Module):
    """ResNet basic block without a projection shortcut (channels and stride unchanged)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(dim)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(x + self.bn2(self.conv2(y)), inplace=True)


class LinearNorm(nn.Module):
    """Bias-free Linear then BatchNorm1d over all tokens of the batch (LeViT's projection)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return self.bn(y.flatten(0, -2)).reshape(y.shape)


class ConvNorm(nn.Sequential):
    """Bias-free conv then BatchNorm2d."""

    def __init__(self, in_chans: int, out_chans: int, kernel: int = 3, stride: int = 2, padding: int = 1):
        super().__init__()
        self.add_module("conv", nn.Conv2d(in_chans, out_chans, kernel, stride, padding, bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_chans))


class NormLinear(nn.Sequential):
    """BatchNorm1d -> Dropout -> Linear classifier head."""

    def __init__(self, in_dim: int, out_dim: int, drop: float = 0.0):
        super().__init__()
        self.add_module("bn", nn.BatchNorm1d(in_dim))
        self.add_module("drop", nn.Dropout(drop))
        self.add_module("linear", nn.Linear(in_dim, out_dim))


def _bn_scale_shift(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


@torch.no_grad()
def fuse_linear_bn(linear: nn.Linear, bn: nn.BatchNorm1d) -> nn.Linear:
    """One Linear equal to ``bn(linear(x))`` with the BatchNorm's running statistics."""
    scale, shift = _bn_scale_shift(bn)
    fused = nn.Linear(linear.in_features, linear.out_features, bias=True).to(linear.weight)
    fused.weight.copy_(linear.weight * scale[:, None])
    bias = linear.bias if linear.bias is not None else torch.zeros_like(shift)
    fused.bias.copy_(bias * scale + shift)
    return fused


@torch.no_grad()
def fuse_bn_linear(bn: nn.BatchNorm1d, linear: nn.Linear) -> nn.Linear:
    """One Linear equal to ``linear(bn(x))`` (BatchNorm before the Linear, as in NormLinear)."""
    scale, shift = _bn_scale_shift(bn)
    fused = nn.Linear(linear.in_features, linear.out_features, bias=True).to(linear.weight)
    fused.weight.copy_(linear.weight * scale[None, :])
    bias = linear.bias if linear.bias is not None else torch.zeros(linear.out_features).to(shift)
    fused.bias.copy_(bias + linear.weight @ shift)
    return fused


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """One Conv2d equal to ``bn(conv(x))`` with the BatchNorm's running statistics."""
    scale, shift = _bn_scale_shift(bn)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True).to(conv.weight)
    fused.weight.copy_(conv.weight * scale[:, None, None, None])
    bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
    fused.bias.copy_(bias * scale + shift)
    return fused
