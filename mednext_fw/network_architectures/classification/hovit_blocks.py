"""HoViT's token-mixing parts: LeViT-style attention with relative position biases, MLP, block, stem."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mednext_fw.network_architectures.classification.layers import ConvNorm, LinearNorm


def relative_offset_index(resolution: int) -> torch.Tensor:
    """(N, N) index of the (|dy|, |dx|) offset between every pair of the R x R token grid."""
    ys, xs = torch.meshgrid(torch.arange(resolution), torch.arange(resolution), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = (ys[:, None] - ys[None, :]).abs()
    dx = (xs[:, None] - xs[None, :]).abs()
    return dy * resolution + dx


class Attention(nn.Module):
    """Multi-head self-attention; q, k and v all use ``head_dim``; a learnable bias per head and offset.

    The bias table has one entry per (|dy|, |dx|) offset (R*R of them) and is built here for the
    configured resolution, so optimisers and ``load_state_dict`` see it from the start.
    """

    def __init__(self, dim: int, heads: int, resolution: int, head_dim: int = 64):
        super().__init__()
        self.heads, self.head_dim, self.resolution = heads, head_dim, resolution
        inner = heads * head_dim
        self.qkv = LinearNorm(dim, 3 * inner)
        self.proj = nn.Sequential()
        self.proj.add_module("act", nn.Hardswish())
        self.proj.add_module("ln", LinearNorm(inner, dim))
        self.attention_biases = nn.Parameter(torch.zeros(heads, resolution * resolution))
        self.register_buffer("attention_bias_idxs", relative_offset_index(resolution), persistent=False)
        self.register_buffer("fixed_bias", None, persistent=False)  # set by freeze_bias() for inference

    def bias(self) -> torch.Tensor:
        if self.fixed_bias is not None:
            return self.fixed_bias
        return self.attention_biases[:, self.attention_bias_idxs]

    @torch.no_grad()
    def freeze_bias(self) -> None:
        """Gather the (heads, N, N) bias once; only for eval-only copies (see HoViT.fuse)."""
        self.fixed_bias = self.attention_biases[:, self.attention_bias_idxs].unsqueeze(0).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        if n != self.resolution ** 2:
            raise ValueError(f"attention built for {self.resolution}x{self.resolution} tokens got {n}")
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias().to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: int = 2, drop: float = 0.5):
        super().__init__()
        self.ln1 = LinearNorm(dim, ratio * dim)
        self.act = nn.Hardswish()
        self.drop = nn.Dropout(drop)
        self.ln2 = LinearNorm(ratio * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln2(self.drop(self.act(self.ln1(x))))


class LeViTBlock(nn.Module):
    """``x + attn(x)`` then ``x + mlp(x)`` on (B, N, C) tokens."""

    def __init__(self, dim: int, heads: int, resolution: int, mlp_ratio: int = 2, drop: float = 0.5):
        super().__init__()
        self.attn = Attention(dim, heads, resolution)
        self.mlp = Mlp(dim, mlp_ratio, drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


def stem16(in_chans: int, dim: int = 256) -> nn.Sequential:
    """Four 3x3 stride-2 conv+BN (in -> dim/8 -> dim/4 -> dim/2 -> dim), Hardswish between them."""
    chans = [in_chans, dim // 8, dim // 4, dim // 2, dim]
    layers: list[nn.Module] = []
    for i in range(4):
        layers.append(ConvNorm(chans[i], chans[i + 1]))
        if i < 3:
            layers.append(nn.Hardswish())
    return nn.Sequential(*layers)
