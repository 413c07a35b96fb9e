"""1x1 convolutions (MedNeXt's expand, compress, shortcuts, stem and heads) on channels-last tensors.

On a CPU oneDNN runs a 1x1 conv 1.3-1.7x faster than MKL runs the same product as a GEMM on
MedNeXt's shapes (few channels, many voxels), but torch's own backward of that conv is slower than
two GEMMs, so ``_Pointwise`` pairs oneDNN's forward and input gradient with one GEMM for the weight
gradient. Small tensors, CUDA and tracing (ONNX export) keep the plain GEMM (``F.linear``).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch.autograd import Function

from mednext_fw.network_architectures.mednext.fast import _tracing, to_channels_first_view, to_channels_last_view

# Below this many voxels (all samples) oneDNN's per-call set-up outweighs its faster 1x1 kernel: at
# 2 x 16^3 voxels the GEMM was 1.0-2.3x faster, from 2 x 24^3 on oneDNN 1.1-1.5x (fwd + bwd, 8-128 channels).
_ONEDNN_MIN_VOXELS = 1 << 14


def _cpu_kernels(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and not _tracing() and x.numel() >= _ONEDNN_MIN_VOXELS * x.shape[-1]


def _on_grid(stride: Sequence[int]) -> tuple[slice, ...]:
    """Index of every stride-th voxel of a channels-last (N, *S, C) tensor."""
    return (slice(None),) + tuple(slice(None, None, s) for s in stride)


def _conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, ...]) -> torch.Tensor:
    """(N, *S, K) channels-last -> (N, *S', M) contiguous, as oneDNN's 1x1 conv. The voxels of every
    sample go in as one row of a 2-D image (1, K, 1, N*V): one layout for 2-D and 3-D inputs and for
    the norm's per-sample rows alike, as fast as the N-d conv (measured within 5% on MedNeXt's shapes)."""
    x = x[_on_grid(stride)]  # a view; the whole tensor where the stride is 1
    rows = x.reshape(1, 1, -1, x.shape[-1])
    y = F.conv2d(to_channels_first_view(rows), weight.reshape(weight.shape[0], -1, 1, 1), bias)
    y = to_channels_last_view(y)
    return (y if y.is_contiguous() else y.contiguous()).reshape(*x.shape[:-1], weight.shape[0])


def _weight_product(gy: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """gy^T @ x for (V, M) ``gy`` and (V, K) ``x``, in the operand order MKL runs fastest. Measured at
    32^3-64^3: with a side under 16 channels, the narrow side first (the other order was 5-8x slower,
    e.g. 8 -> 16 channels: 32 vs 5 ms); otherwise the wider side first (10-25% faster)."""
    m, k = gy.shape[1], x.shape[1]
    narrow_first = min(m, k) < 16
    if (m <= k) == narrow_first:
        return torch.mm(gy.t(), x)
    return torch.mm(x.t(), gy).t()


class _Pointwise(Function):
    """1x1 conv on channels-last tensors: forward and input gradient as oneDNN convs, the weight
    gradient as one GEMM; torch's own conv backward took 1.6x as long (54 vs 34 ms, 32 -> 64 at 64^3)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride: tuple[int, ...]):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, bias is not None)
        return _conv1x1(x, weight, bias, stride)

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        stride, has_bias = ctx.conf
        gy = gy.contiguous()  # a loss on the channels-first view of a head sends channels-first gradients
        w2 = weight.reshape(weight.shape[0], -1)
        on_grid = _on_grid(stride)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:  # under autocast gy is bf16/fp16 while the weight is fp32
            part = _conv1x1(gy, w2.t().to(gy.dtype), None, (1,) * len(stride)).to(x.dtype)
            if any(s != 1 for s in stride):  # a strided 1x1 conv reads every s-th voxel only
                gx = part.new_zeros(x.shape)
                gx[on_grid] = part
            else:
                gx = part
        if ctx.needs_input_grad[1]:
            xs = x[on_grid]
            acc = torch.promote_types(gy.dtype, torch.float32)
            gw = _weight_product(gy.reshape(-1, gy.shape[-1]).to(acc), xs.reshape(-1, xs.shape[-1]).to(acc))
            gw = gw.reshape(weight.shape).to(weight.dtype)
        if has_bias and ctx.needs_input_grad[2]:
            gb = gy.reshape(-1, gy.shape[-1]).sum(0, dtype=torch.promote_types(gy.dtype, torch.float32))
            gb = gb.to(weight.dtype)
        return gx, gw, gb, None


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
              stride: Sequence[int] | None = None) -> torch.Tensor:
    """A 1x1 conv (``weight`` (C_out, C_in, ..)) on a channels-last (N, *S, C_in) tensor -> (N, *S', C_out).

    On a CPU it runs as oneDNN's 1x1 conv (``_conv1x1``), 1.3-1.7x faster than MKL's GEMM on MedNeXt's
    shapes (few channels, many voxels), with its own backward (``_Pointwise``); elsewhere (CUDA,
    tracing) it is the plain GEMM. ``stride`` subsamples like the reference's strided 1x1 conv.
    """
    dim = x.dim() - 2
    stride = tuple(stride or (1,) * dim)
    if _cpu_kernels(x):
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
            return _Pointwise.apply(x, weight, bias, stride)
        return _conv1x1(x, weight, bias, stride)
    return F.linear(x[_on_grid(stride)], weight.flatten(1), bias)


def pointwise_rows(a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``a @ weight.T + bias`` for a (V, K) row-major ``a``, through ``pointwise`` (the norm's fused
    autograd function calls it with autograd off)."""
    return pointwise(a.unsqueeze(0).unsqueeze(0), weight, bias)[0, 0]
