"""HoViT: LeViT conv stem, two attention stages with conv downsampling, 1x1-conv last stage.

``create_hovit('S')`` = 2+2 blocks; ``create_hovit('B')`` = 4+4 candidate blocks with Gumbel block
selection (gumbel.py; ``gumbel=False`` gives the plain 4+4 baseline). Logits are the mean of the
two BN+Linear heads ``head`` and ``head_dist`` (the public code computed ``head_dist`` and dropped it;
averaging keeps its published parameter count while giving every parameter a gradient, which DDP
needs). ``prune()`` / ``fuse()`` give eval-only copies with BatchNorms folded and LoRA merged.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from mednext_fw.network_architectures.classification.base import ClassifierBase
from mednext_fw.network_architectures.classification.gumbel import (
    BlockStack, GumbelBlockSelect, linear_temperature, set_temperature)
from mednext_fw.network_architectures.classification.hovit_blocks import Attention, LeViTBlock, stem16
from mednext_fw.network_architectures.classification.layers import (
    ConvNorm, LinearNorm, NormLinear, fuse_bn_linear, fuse_conv_bn, fuse_linear_bn)
from mednext_fw.network_architectures.classification.lora import inject_lora, merge_lora

HOVIT_DEPTHS = {"S": (2, 2), "B": (4, 4)}
FINETUNE_TRAINABLE = ("lora_a", "lora_b", "gate_logits", "conv1x1", "head")


class HoViT(ClassifierBase):
    def __init__(self, num_classes: int, depths: tuple[int, int] = (2, 2), gumbel: bool = False,
                 in_chans: int = 3, img_size: int = 224, dims: tuple[int, int] = (256, 384),
                 heads: tuple[int, int] = (4, 6), mlp_drop: float = 0.5, tau_max: float = 1.0,
                 tau_min: float = 0.1, gate_lr_mult: float = 10.0):
        super().__init__()
        if img_size % 16 or img_size < 16:
            raise ValueError(f"HoViT needs an input size that is a multiple of 16, got {img_size}")
        self.num_classes, self.img_size = num_classes, img_size
        self.tau_max, self.tau_min, self.gate_lr_mult = tau_max, tau_min, gate_lr_mult
        r1 = img_size // 16
        r2 = (r1 - 1) // 2 + 1  # 3x3 stride-2 conv with padding 1
        stage = (lambda blocks: GumbelBlockSelect(blocks, tau_max)) if gumbel else BlockStack
        self.stem = stem16(in_chans, dims[0])
        self.stage1 = stage([LeViTBlock(dims[0], heads[0], r1, drop=mlp_drop) for _ in range(depths[0])])
        self.downsample = nn.Sequential(nn.Conv2d(dims[0], dims[1], 3, 2, 1), nn.Hardswish())
        self.stage2 = stage([LeViTBlock(dims[1], heads[1], r2, drop=mlp_drop) for _ in range(depths[1])])
        self.conv1x1 = nn.Sequential(nn.Conv2d(dims[1], 512, 1), nn.BatchNorm2d(512), nn.ReLU(inplace=True))
        self.head = NormLinear(512, num_classes)
        self.head_dist: nn.Module | None = NormLinear(512, num_classes)
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.img_size or x.shape[-2] != self.img_size:
            raise ValueError(f"HoViT was built for {self.img_size}x{self.img_size} inputs "
                             f"(img_size), got {tuple(x.shape[-2:])}")
        # channels_last makes the map <-> token reshapes free: (B,C,H,W) channels_last is (B,HW,C) in memory
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        x = _tokens(self.stage1, x)
        x = self.downsample(x)
        b, c, h, w = x.shape
        t = self.stage2(x.flatten(2).transpose(1, 2).contiguous())
        if isinstance(self.conv1x1[0], nn.Linear):  # fused copy: the 1x1 conv as a Linear over tokens
            x = self.conv1x1(t).mean(dim=1)
        else:
            x = self.conv1x1(t.transpose(1, 2).reshape(b, c, h, w)).mean(dim=(2, 3))
        if self.head_dist is None:  # fused copy: the two heads are already averaged into one
            return self.head(x)
        return (self.head(x) + self.head_dist(x)) * 0.5

    def on_train_step(self, step: int, total_steps: int) -> None:
        set_temperature(self, linear_temperature(step, total_steps, self.tau_max, self.tau_min))

    def selected_blocks(self) -> tuple[int | None, int | None]:
        return tuple(s.selected() if isinstance(s, GumbelBlockSelect) else None  # type: ignore[return-value]
                     for s in (self.stage1, self.stage2))

    def freeze_for_finetune(self) -> None:
        """The fine-tune recipe: only LoRA, gates, the 1x1 conv (+BN) and the heads train."""
        for name, p in self.named_parameters():
            p.requires_grad_(any(t in name for t in FINETUNE_TRAINABLE))

    def fuse(self) -> "HoViT":
        """Eval-only copy: LoRA merged, every BatchNorm folded, attention biases gathered once,
        the 1x1 conv as a Linear over tokens."""
        if self.head_dist is None:
            raise ValueError("this HoViT is already a fused inference copy")
        m = copy.deepcopy(self).eval()
        merge_lora(m)
        _fuse_tree(m)
        conv, bn, act = m.conv1x1
        pointwise = fuse_conv_bn(conv, bn)
        linear = nn.Linear(pointwise.in_channels, pointwise.out_channels).to(pointwise.weight)
        with torch.no_grad():
            linear.weight.copy_(pointwise.weight.flatten(1))
            linear.bias.copy_(pointwise.bias)
        m.conv1x1 = nn.Sequential(linear, act)
        h1, h2 = fuse_bn_linear(m.head.bn, m.head.linear), fuse_bn_linear(m.head_dist.bn, m.head_dist.linear)
        with torch.no_grad():
            h1.weight.mul_(0.5).add_(h2.weight, alpha=0.5)
            h1.bias.mul_(0.5).add_(h2.bias, alpha=0.5)
        m.head, m.head_dist = h1, None
        # channels_last weights spare oneDNN a reorder of the (channels_last) activations per call
        return m.to(memory_format=torch.channels_last).requires_grad_(False)

    def prune(self, fuse: bool = True) -> "HoViT":
        """Compact eval-only network running only the selected block of each Gumbel stage."""
        m = copy.deepcopy(self).eval()
        for name in ("stage1", "stage2"):
            st = getattr(m, name)
            if isinstance(st, GumbelBlockSelect):
                setattr(m, name, st.prune())
        return m.fuse() if fuse else m


def _tokens(stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    y = stage(x.flatten(2).transpose(1, 2).contiguous())  # no copy when x is channels_last
    return y.transpose(1, 2).reshape(b, c, h, w)  # a channels_last view of the token tensor


def _fuse_tree(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, LinearNorm):
            setattr(module, name, fuse_linear_bn(child.linear, child.bn))
        elif isinstance(child, ConvNorm):
            setattr(module, name, fuse_conv_bn(child.conv, child.bn))
        else:
            if isinstance(child, Attention):
                child.freeze_bias()
            _fuse_tree(child)


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def create_hovit(variant: str = "S", num_classes: int = 9, lora_rank: int = 0, lora_alpha: float | None = None,
                 in_chans: int = 3, in_channels: int | None = None, img_size: int = 224,
                 gumbel: bool | None = None, mlp_drop: float = 0.5, tau_max: float = 1.0, tau_min: float = 0.1,
                 gate_lr_mult: float = 10.0, baseline_weights: str | None = None,
                 levit_weights: str | None = None, finetune: bool = False) -> HoViT:
    """Build HoViT-S/B. ``in_channels`` (the trainer's name) and ``in_chans`` are the same setting.

    ``gumbel`` defaults to True for B. ``baseline_weights``: a checkpoint file of the same variant
    without LoRA/gates (state dict or a trainer checkpoint) loaded before LoRA is injected.
    ``levit_weights``: a local timm LeViT-256 checkpoint (ImageNet) whose conv stem starts HoViT's.
    ``lora_rank > 0`` wraps every Linear except the heads (base weights frozen; ``lora_alpha``
    defaults to 2 x rank) here, before any optimiser exists. ``finetune=True`` then freezes all but
    LoRA, gates, the 1x1 conv and the heads.
    """
    if variant not in HOVIT_DEPTHS:
        raise ValueError(f"Unknown HoViT variant '{variant}'; choose one of {sorted(HOVIT_DEPTHS)}")
    if in_channels is not None and in_chans not in (3, in_channels):
        raise ValueError(f"in_channels={in_channels} and in_chans={in_chans} disagree; pass only one")
    model = HoViT(num_classes, HOVIT_DEPTHS[variant], variant == "B" if gumbel is None else gumbel,
                  in_channels if in_channels is not None else in_chans, img_size, mlp_drop=mlp_drop,
                  tau_max=tau_max, tau_min=tau_min, gate_lr_mult=gate_lr_mult)
    if levit_weights is not None:
        from mednext_fw.network_architectures.classification.pretrained import load_levit_stem

        load_levit_stem(model.stem, levit_weights)
    if baseline_weights is not None:
        from mednext_fw.network_architectures.classification.pretrained import load_hovit_baseline

        load_hovit_baseline(model, baseline_weights)
    if lora_rank:
        inject_lora(model, lora_rank, 2.0 * lora_rank if lora_alpha is None else lora_alpha)
    if finetune:
        model.freeze_for_finetune()
    return model
