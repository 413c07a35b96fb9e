"""Normalisations of the MedNeXt block, on channels-last (N, *S, C) tensors.

``group``: the reference's GroupNorm with one group per channel, i.e. instance norm with a
per-channel affine. Because the block feeds the normalised tensor straight into a 1x1 conv, the
norm is folded into that conv: with per-(sample, channel) scale a = w / sqrt(var + eps) and shift
b = beta - mean * a, ``W @ (a * x + b) + c == (W * a) @ x + (W @ b + c)``. Only the statistics are
computed over the big tensor; the normalised tensor is never materialised (one pass instead of
three, and one activation less to keep for backward).

``layer``: the reference's channels-first LayerNorm (normalise over C at every voxel), which in
channels-last is plain ``F.layer_norm`` over the last dim, so it works in 2D and 3D alike.

``GRN``: global response normalisation on the expanded tensor; parameters keep the reference's
(1, C, 1, ..) shape so checkpoints map one to one.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Function

from mednext_fw.network_architectures.mednext.pointwise import pointwise_rows

NORMS = ("group", "layer")


class ChannelNorm(nn.Module):
    """Holds the affine parameters (C,) and applies the norm fused with the following 1x1 conv."""

    def __init__(self, channels: int, kind: str = "group", eps: float = 1e-5):
        super().__init__()
        if kind not in NORMS:
            raise ValueError(f"Unknown MedNeXt norm '{kind}'; choose one of {NORMS}")
        self.kind = kind
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, kind={self.kind}, eps={self.eps}"

    def norm_then_linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``linear(norm(x), weight, bias)`` for x of shape (N, *S, C) and weight (C_out, C)."""
        if self.kind == "layer":
            return F.linear(F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps), weight, bias)
        n, c = x.shape[0], x.shape[-1]
        flat = x.reshape(n, -1, c)
        dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype
        args = (flat, self.weight, self.bias, weight, bias, self.eps, dtype)
        # without autograd (inference, tracing) the plain ops, no autograd.Function node
        out = _InstanceNormLinear.apply(*args) if torch.is_grad_enabled() else _norm_linear(*args)[0]
        return out.reshape(*x.shape[:-1], weight.shape[0])


def _centred_square_sum(x: torch.Tensor, mean: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    """sum_v (x - mean)^2 over dim 1, two-pass accurate, in slabs so no full-size temporary is made."""
    total = x.new_zeros(mean.shape)
    centre = mean.unsqueeze(1)
    for start in range(0, x.shape[1], chunk):
        total += (x[:, start : start + chunk] - centre).square_().sum(1)
    return total


def _linear_per_sample(a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """a[i] @ weight[i].T + bias[i] for (N, V, K) ``a``, (N, M, K) ``weight``, (N, M) ``bias`` -> (N, V, M).
    Sample by sample into one output, so at most one sample's result exists twice (these are the
    block's largest tensors)."""
    if a.shape[0] == 1:
        return pointwise_rows(a[0], weight[0], bias[0]).unsqueeze(0)
    out = a.new_empty(a.shape[:2] + weight.shape[1:2])
    for i in range(a.shape[0]):
        out[i] = pointwise_rows(a[i], weight[i], bias[i])
    return out


def _norm_linear(x, norm_w, norm_b, weight, bias, eps: float, dtype: torch.dtype):
    """The fused forward: (output, (mean, rstd, scale, shift, w_eff)) for the backward."""
    with torch.autocast(x.device.type, enabled=False):
        acc = torch.promote_types(x.dtype, torch.float32)
        xf = x.to(acc)
        size = x.shape[1]
        mean = xf.sum(1) / size  # (N, C); sum-based: var_mean is ~10x slower on this layout
        var = _centred_square_sum(xf, mean) / size
        rstd = torch.rsqrt(var + eps)
        scale = norm_w.to(acc) * rstd
        shift = norm_b.to(acc) - mean * scale
        w32 = weight.to(acc)
        w_eff = w32.unsqueeze(0) * scale.unsqueeze(1)  # (N, C_out, C)
        b_eff = shift @ w32.t() + bias.to(acc)  # (N, C_out)
        out = _linear_per_sample(x.to(dtype), w_eff.to(dtype), b_eff.to(dtype))
    return out, (mean, rstd, scale, shift, w_eff)


class _InstanceNormLinear(Function):
    """linear(instance_norm(x) * w + beta, W, b) on (N, S, C) with the norm folded into W, b.

    The backward uses the closed form of the norm gradient; all its reductions come from the one
    (C_out x C) product gz^T x, so it reads the big tensors three times (two GEMMs, one axpy)
    instead of materialising the normalised tensor. Statistics and gradients are in fp32.
    """

    @staticmethod
    def forward(ctx, x, norm_w, norm_b, weight, bias, eps: float, dtype: torch.dtype):
        out, saved = _norm_linear(x, norm_w, norm_b, weight, bias, eps, dtype)
        ctx.save_for_backward(x, norm_w, weight, *saved)
        return out

    @staticmethod
    def backward(ctx, gz):
        x, norm_w, weight, mean, rstd, scale, shift, w_eff = ctx.saved_tensors
        with torch.autocast(gz.device.type, enabled=False):
            acc = torch.promote_types(x.dtype, torch.float32)
            gz = gz.to(acc)
            xf = x.to(acc)
            size = x.shape[1]
            w32 = weight.to(acc)
            gsum = gz.sum(1)  # (N, C_out)
            m = torch.stack([gz[i].t() @ xf[i] for i in range(x.shape[0])])  # (N, C_out, C) = gz^T x
            g1 = gsum @ w32  # sum_v dL/d(normed)
            g2 = (m * w32.unsqueeze(0)).sum(1)  # sum_v dL/d(normed) * x
            g_w_n = rstd * (g2 - mean * g1)  # per-sample grad of the norm weight
            alpha = -scale * rstd * g_w_n / size
            beta = -scale * g1 / size - alpha * mean
            gx = _linear_per_sample(gz, w_eff.transpose(1, 2), beta).addcmul_(xf, alpha.unsqueeze(1)).to(x.dtype)
            g_weight = (m * scale.unsqueeze(1)).sum(0) + gsum.t() @ shift
        return (gx, g_w_n.sum(0).to(norm_w.dtype), g1.sum(0).to(norm_w.dtype), g_weight.to(weight.dtype),
                gsum.sum(0).to(weight.dtype), None, None)


class GRN(nn.Module):
    """Global response normalisation: x + gamma * (x * n) + beta, n = ||x||_spatial / mean_C ||x||."""

    def __init__(self, channels: int, dim: int):
        super().__init__()
        shape = (1, channels) + (1,) * dim
        self.gamma = nn.Parameter(torch.zeros(shape))
        self.beta = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[-1]
        gx = torch.linalg.vector_norm(x.reshape(n, -1, c), ord=2, dim=1, keepdim=True)  # (N, 1, C)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        gamma = self.gamma.reshape(1, 1, c)
        beta = self.beta.reshape(1, 1, c)
        flat = x.reshape(n, -1, c)
        return (flat + gamma * (flat * nx) + beta).reshape(x.shape)
