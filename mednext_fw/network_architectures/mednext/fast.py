"""Depthwise convolutions with a cheaper CPU backward, on channels-last tensors.

MedNeXt spends most of a CPU training step in the backward of its depthwise k^d convolutions.
With a channels-last input the *forward* of PyTorch's depthwise conv is fast (oneDNN), but the
generic backward is 5-20x slower than the forward. Both gradients are themselves depthwise
convolutions, so we compute them with forward kernels:

* conv, stride s:  dL/dx = conv_transpose(dy, w, stride s)    (stride 1: conv with flipped w)
                   dL/dw = conv(x, weight=dy, dilation=s)     (dy acts as a huge kernel)
* conv_transpose, stride s:  dL/dx = conv(dy, w, stride s)
                             dL/dw = conv(dy, weight=x, dilation=s)

The math is the same as autograd's (tested against it); only the kernels used differ. On other
devices (CUDA) the native ops are used unchanged, since cuDNN's backward is already fast.

PyTorch's CPU depthwise *transposed* conv is itself slow (it takes no oneDNN fast path), and
MedNeXt needs it in every up block and in the input gradient of every down block.
``conv_transpose_phases`` computes it as one ordinary depthwise conv per output phase (polyphase
decomposition), which oneDNN runs fast: 1.6-24x faster on MedNeXt's shapes (2 threads).

Tensors here are logical (N, C, *spatial) views whose memory is channels-last, as produced by
``to_channels_first_view`` from the (N, *spatial, C) tensors the MedNeXt blocks work on.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import torch
import torch.nn.functional as F
from torch.autograd import Function

_CONV = {2: F.conv2d, 3: F.conv3d}
_CONV_T = {2: F.conv_transpose2d, 3: F.conv_transpose3d}


# Explicit non-negative permutations (not movedim(-1, ..)): they trace and export (ONNX) as one Transpose.
def to_channels_first_view(x: torch.Tensor) -> torch.Tensor:
    """(N, *S, C) contiguous -> (N, C, *S) view with channels-last strides (no copy)."""
    return x.permute(0, x.dim() - 1, *range(1, x.dim() - 1))


def to_channels_last_view(x: torch.Tensor) -> torch.Tensor:
    """(N, C, *S) -> (N, *S, C) view (no copy)."""
    return x.permute(0, *range(2, x.dim()), 1)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """(N, C, *S) of any memory layout -> contiguous (N, *S, C) (no copy when already channels-last)."""
    return to_channels_last_view(x).contiguous()


# Slabs of ~1 MB of kernel: oneDNN runs such a big-kernel depthwise conv faster the smaller each call's
# kernel is, down to a plane or two (MedNeXt-S/B training step 64^3: 9-10% faster than 8 MB slabs,
# alternating steps in one process; benchmarks/results/mednext.md).
_CHUNK_BYTES = 1 * 2**20


_CL = {2: torch.channels_last, 3: torch.channels_last_3d}


def _correlate(inp: torch.Tensor, kernel: torch.Tensor, n_out: list[int], dim: int) -> torch.Tensor:
    """out[c, o] = sum_n sum_v inp[n, c, o + v] * kernel[n, c, v] for o < n_out (no padding, no dilation).

    A depthwise conv with ``kernel`` as its (huge) weight. oneDNN's scratch memory and time for such a
    conv grow faster than the weight, so the kernel is cut into slabs along the first spatial axis (each
    slab reads the matching input rows) and the partial sums are added.
    """
    short = [max(0, o + k - 1 - s) for o, k, s in zip(n_out, kernel.shape[2:], inp.shape[2:])]
    if any(short):
        inp = F.pad(inp, tuple(v for d in reversed(short) for v in (0, d)))
    channels, n_planes = inp.shape[1], kernel.shape[2]
    chunk = max(1, _CHUNK_BYTES // max(kernel[0, :, 0].numel() * kernel.element_size(), 1))
    total = None
    for n in range(inp.shape[0]):
        for v0 in range(0, n_planes, chunk):
            v1 = min(n_planes, v0 + chunk)
            piece = inp[n : n + 1, :, v0 : v1 - 1 + n_out[0]]
            part = _CONV[dim](piece, kernel[n, :, v0:v1].unsqueeze(1), groups=channels)
            total = part if total is None else total + part
    return total[(0, slice(None)) + tuple(slice(0, o) for o in n_out)]


def phase_taps(s: int, p: int, k: int, r: int) -> tuple[list[int], int]:
    """One axis of a transposed conv (stride ``s``, padding ``p``, kernel ``k``): the taps ``j`` that
    reach outputs ``s*q + r``, and the input offset of the last of them. Output ``o = s*i - p + j`` takes
    tap ``j`` from input ``i = q + (r + p - j) / s``; the offsets of the taps in reverse order are
    consecutive, starting at the returned one."""
    taps = [j for j in range(k) if (r + p - j) % s == 0]
    return taps, ((r + p - taps[-1]) // s if taps else 0)


def conv_transpose_phases(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, stride: Sequence[int],
                          padding: Sequence[int], output_padding: Sequence[int] | None = None) -> torch.Tensor:
    """``F.conv_transposeNd(x, w, bias, stride, padding, output_padding, groups=C)`` for a depthwise ``w``.

    Output voxel ``o = s*q + r`` (per axis) receives exactly the taps ``j`` with ``j = r + p (mod s)``,
    from input ``q + (r + p - j) / s``: for each phase ``r`` that is an ordinary correlation of ``x``
    with those taps reversed. Each phase is one depthwise conv (symmetric padding, then a crop to the
    phase's outputs) written into its strided slots of the output.
    """
    dim = x.dim() - 2
    output_padding = output_padding or (0,) * dim
    n_in, k = x.shape[2:], w.shape[2:]
    n_out = [(n - 1) * s - 2 * p + kk + o for n, s, p, kk, o in zip(n_in, stride, padding, k, output_padding)]
    out = torch.empty((x.shape[0], x.shape[1], *n_out), dtype=x.dtype, device=x.device, memory_format=_CL[dim])
    w = w.to(x.dtype)
    bias = None if bias is None else bias.to(x.dtype)
    for phase in itertools.product(*(range(s) for s in stride)):
        where = (slice(None), slice(None)) + tuple(slice(r, None, s) for r, s in zip(phase, stride))
        taps, pads, crops = [], [], []
        for r, s, p, kk, n, no in zip(phase, stride, padding, k, n_in, n_out):
            js, d_min = phase_taps(s, p, kk, r)
            count = len(range(r, no, s))
            if not js or not count:
                break
            d_max = d_min + len(js) - 1  # input offset of the first tap
            pad = max(0, -d_min, count + d_max - n)
            taps.append(slice(js[0], js[-1] + 1, s))
            pads.append(pad)
            crops.append(slice(d_min + pad, d_min + pad + count))
        else:
            sub = w[(slice(None), slice(None), *taps)].flip(list(range(2, 2 + dim)))
            y = _CONV[dim](x, sub, bias, padding=pads, groups=x.shape[1])
            out[where] = y[(slice(None), slice(None), *crops)]
            continue
        out[where] = 0 if bias is None else bias.view(-1, *([1] * dim))  # no tap reaches this phase
    return out


def _weight_grad(inp: torch.Tensor, kernel: torch.Tensor, padding: Sequence[int], dilation: Sequence[int],
                 out_size: Sequence[int], dim: int) -> torch.Tensor:
    """out[c, o] = sum_n sum_v inp_pad[n, c, o + dilation * v] * kernel[n, c, v]  -> (C, 1, k..).

    All arguments per axis. Dilated convs with a huge weight hit a slow, memory-hungry path, so a
    dilation of 2 is split into its polyphase parts: offsets o = 2q + r read inp_pad[2(v + q) + r],
    an undilated correlation of the parity-r sub-grid of the input with the kernel.
    """
    inp = F.pad(inp, tuple(v for p in reversed(padding) for v in (p, p)))
    if all(d == 1 for d in dilation):
        return _correlate(inp, kernel, list(out_size), dim).unsqueeze(1)
    out = inp.new_zeros((inp.shape[1],) + tuple(out_size))
    for parity in itertools.product(*(range(d) for d in dilation)):
        grid = (slice(None), slice(None)) + tuple(slice(r, None, d) for r, d in zip(parity, dilation))
        part = inp[grid].contiguous(memory_format=_CL[dim])
        n_out = [-(-(o - r) // d) for o, r, d in zip(out_size, parity, dilation)]
        if min(n_out) <= 0:  # a kernel side smaller than the dilation (e.g. 1) has no odd offsets
            continue
        out[grid[1:]] = _correlate(part, kernel, n_out, dim)
    return out.unsqueeze(1)


class _DepthwiseConv(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride: tuple[int, ...], padding: tuple[int, ...]):
        dim = x.dim() - 2
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dim, weight.dtype, bias is not None)
        return _CONV[dim](x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype),
                          stride=stride, padding=padding, groups=x.shape[1])

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        stride, padding, dim, wdtype, has_bias = ctx.conf
        gy = gy.to(x.dtype)
        w = weight.to(x.dtype)
        channels = x.shape[1]
        spatial = tuple(range(2, 2 + dim))
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            if all(s == 1 for s in stride):
                gx = _CONV[dim](gy, w.flip(spatial), padding=padding, groups=channels)
            else:
                produced = [(m - 1) * s - 2 * p + k for m, s, p, k in zip(gy.shape[2:], stride, padding, w.shape[2:])]
                out_pad = [s - p for s, p in zip(x.shape[2:], produced)]
                gx = conv_transpose_phases(gy, w, None, stride, padding, out_pad)
        if ctx.needs_input_grad[1]:
            gw = _weight_grad(x, gy, padding, stride, weight.shape[2:], dim).to(wdtype)
        if has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum((0,) + spatial).to(wdtype)
        return gx, gw, gb, None, None


class _DepthwiseConvTranspose(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride: tuple[int, ...], padding: tuple[int, ...]):
        dim = x.dim() - 2
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dim, weight.dtype, bias is not None)
        return conv_transpose_phases(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        stride, padding, dim, wdtype, has_bias = ctx.conf
        gy = gy.to(x.dtype)
        channels = x.shape[1]
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _CONV[dim](gy, weight.to(x.dtype), stride=stride, padding=padding, groups=channels)
        if ctx.needs_input_grad[1]:
            gw = _weight_grad(gy, x, padding, stride, weight.shape[2:], dim).to(wdtype)
        if has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum((0,) + tuple(range(2, 2 + dim))).to(wdtype)
        return gx, gw, gb, None, None


def _use_native(x: torch.Tensor) -> bool:
    """Native ops off the CPU, and without autograd (inference, tracing, ONNX export): the custom
    functions only change the backward, so a forward-only call gains nothing from them."""
    return x.device.type != "cpu" or not torch.is_grad_enabled()


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def _per_axis(value: int | Sequence[int], dim: int) -> tuple[int, ...]:
    return (int(value),) * dim if isinstance(value, int) else tuple(int(v) for v in value)


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int | Sequence[int],
                   padding: int | Sequence[int]):
    """Depthwise conv on a (N, C, *S) tensor; same result as ``F.convNd(..., groups=C)``. ``stride`` and
    ``padding`` are ints or per-axis sequences."""
    stride, padding = _per_axis(stride, x.dim() - 2), _per_axis(padding, x.dim() - 2)
    if _use_native(x):
        return _CONV[x.dim() - 2](x, weight, bias, stride=stride, padding=padding, groups=x.shape[1])
    return _DepthwiseConv.apply(x, weight, bias, stride, padding)


def depthwise_conv_transpose(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                             stride: int | Sequence[int], padding: int | Sequence[int]):
    """Depthwise transposed conv on a (N, C, *S) tensor; same result as ``F.conv_transposeNd(..., groups=C)``."""
    stride, padding = _per_axis(stride, x.dim() - 2), _per_axis(padding, x.dim() - 2)
    if x.device.type != "cpu" or _tracing():
        return _CONV_T[x.dim() - 2](x, weight, bias, stride=stride, padding=padding, groups=x.shape[1])
    if not torch.is_grad_enabled():  # CPU inference: the fast forward, no autograd node needed
        return conv_transpose_phases(x, weight, bias, stride, padding)
    return _DepthwiseConvTranspose.apply(x, weight, bias, stride, padding)
