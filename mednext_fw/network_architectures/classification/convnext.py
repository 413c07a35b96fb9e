"""The ConvNeXt slice used by the X-ray MoE model: stem + stages 0 and 1, globally pooled."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mednext_fw.network_architectures.classification.layers import ConvNeXtStage, convnext_stem


@dataclass(frozen=True)
class ConvNeXtWidth:
    dims: tuple[int, int]
    depths: tuple[int, int]
    eps: float  # LayerNorm epsilon of the matching full ConvNeXt (XXLarge was trained with 1e-5)


CONVNEXT_WIDTHS: dict[str, ConvNeXtWidth] = {
    "xxlarge": ConvNeXtWidth(dims=(384, 768), depths=(3, 4), eps=1e-5),
    "tiny": ConvNeXtWidth(dims=(96, 192), depths=(3, 3), eps=1e-6),
}


def convnext_width(name: str) -> ConvNeXtWidth:
    if name not in CONVNEXT_WIDTHS:
        raise ValueError(f"Unknown ConvNeXt width '{name}'; choose one of {sorted(CONVNEXT_WIDTHS)}")
    return CONVNEXT_WIDTHS[name]


class ConvNeXtSlice(nn.Module):
    """``stem -> stages[0] -> stages[1] -> global average pool``; output ``(B, dims[1])``."""

    def __init__(self, in_chans: int = 3, width: str = "xxlarge"):
        super().__init__()
        cfg = convnext_width(width)
        self.width = width
        self.out_features = cfg.dims[1]
        self.stem = convnext_stem(in_chans, cfg.dims[0], cfg.eps)
        self.stages = nn.Sequential(
            ConvNeXtStage(cfg.dims[0], cfg.dims[0], cfg.depths[0], downsample=False, eps=cfg.eps),
            ConvNeXtStage(cfg.dims[0], cfg.dims[1], cfg.depths[1], downsample=True, eps=cfg.eps),
        )
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
