"""A traceable, channels-first formulation of a trained MedNeXt, for ONNX / OpenVINO export.

Our MedNeXt computes on channels-last tensors with fused custom autograd ops (``fast.py``,
``norms.py``); exporters cannot follow those (a Transpose with a negative perm, graphs that differ
across traces). This module runs the *same math* with plain ``nn.ConvNd`` calls on the trained
parameters, which every exporter understands. It shares the parameters of the module it wraps (no
copy) and reads only its public parts (stem, encoder, down, bottleneck, up, decoder, heads and each
block's dw / norm / expand / grn / compress / shortcut), taking strides, padding and kernel sizes from
the conv modules themselves, so any topology the builder makes is followed. Parity with the fast
forward is tested (``tests/inference/backends``).
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from mednext_fw.network_architectures.mednext.fast import phase_taps


def _reduce_spatial(x: torch.Tensor, op: str) -> torch.Tensor:
    """Mean or sum over the spatial axes one axis at a time. ONNX Runtime and OpenVINO reduce one long
    axis with a plain fp32 running sum: over a 128^3 tile that alone put instance-norm outputs 4e-4
    off; axis by axis (<= a few hundred terms each) it is 1e-5, like torch."""
    for axis in range(x.dim() - 1, 1, -1):
        x = x.mean(axis, keepdim=True) if op == "mean" else x.sum(axis, keepdim=True)
    return x


def _norm(x: torch.Tensor, norm: nn.Module) -> torch.Tensor:
    """``ChannelNorm`` on (N, C, *S): 'group' = one group per channel (instance norm + affine),
    'layer' = normalise over C at every voxel."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    if norm.kind == "layer":
        centred = x - x.mean(1, keepdim=True)
        var = centred.square().mean(1, keepdim=True)
    else:
        centred = x - _reduce_spatial(x, "mean")
        var = _reduce_spatial(centred.square(), "mean")
    y = centred * torch.rsqrt(var + norm.eps)
    return y * norm.weight.reshape(shape) + norm.bias.reshape(shape)


def _grn(x: torch.Tensor, grn: nn.Module) -> torch.Tensor:
    gx = torch.sqrt(_reduce_spatial(x.square(), "sum"))
    nx = gx / (gx.mean(1, keepdim=True) + 1e-6)
    return x + grn.gamma * (x * nx) + grn.beta


def _front_planes(conv: nn.Module) -> list[int]:
    """Transposed convs give (n-1)s - 2p + k (+ output_padding) voxels per axis, the reference pads them
    to n*s: s + 2p - k - output_padding planes in front (0 on stride-1 axes)."""
    need = [s + 2 * p - k - o for s, p, k, o in zip(conv.stride, conv.padding, conv.kernel_size, conv.output_padding)]
    if min(need) < 0:
        raise ValueError(f"transposed conv {conv} overshoots its target size; cannot export")
    return need


def _front_pad(y: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """Zeros in front of each axis up to the reference's n*s (``_front_planes``)."""
    n = y.dim() - 2
    need = _front_planes(conv)
    if not any(need):
        return y
    pads = []
    for axis in reversed(range(n)):  # F.pad lists the last axis first
        pads += [need[axis], 0]
    return F.pad(y, pads)


def _depthwise_transposed(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """``conv(x)`` for a depthwise transposed conv, as one ordinary depthwise conv per output phase.

    Runtimes run depthwise ``ConvTranspose`` as a dense GEMM (OpenVINO: 45% of a MedNeXt-S forward
    on a 128^3 tile, for 4 of its ~170 layers). Per axis, output ``s*q + r`` (q < n, counted from
    ``lead`` planes before the conv's first output) is a correlation of ``x`` with the taps that reach
    it; the phases are concatenated along channels and interleaved by one transpose, and the ``lead``
    planes cropped. Shape-agnostic, so the graph keeps dynamic sides.
    """
    dim = x.dim() - 2
    stride, pad, kernel = conv.stride, conv.padding, conv.kernel_size
    lead = _front_planes(conv)  # the phases cover n*s planes from here; the conv's output starts after them
    conv_nd = (F.conv1d, F.conv2d, F.conv3d)[dim - 1]
    shape = (1, -1) + (1,) * dim
    phases = []
    for phase in itertools.product(*(range(s) for s in stride)):
        # counted from the lead planes, output s*q + r is the conv's s*q + (r - lead)
        per_axis = [phase_taps(s, p, k, r - ld) for s, p, k, ld, r in zip(stride, pad, kernel, lead, phase)]
        if not all(taps for taps, _ in per_axis):  # no tap reaches this phase: bias only
            phases.append(torch.zeros_like(x) + (0 if conv.bias is None else conv.bias.reshape(shape)))
            continue
        y = x
        for axis, (taps, first) in enumerate(per_axis):  # crop/pad so a valid conv yields n outputs
            last = first + len(taps) - 1  # offsets run first..last for the taps in reverse order
            before = (slice(None),) * (2 + axis)  # slices, not narrow(): exporters keep them dynamic
            if first > 0:
                y = y[before + (slice(first, None),)]
            if last < 0:
                y = y[before + (slice(None, last),)]
            y = F.pad(y, [0, 0] * (dim - 1 - axis) + [max(0, -first), max(0, last)])
        index = (slice(None), slice(None)) + tuple(slice(t[0], t[-1] + 1, s) for (t, _), s in zip(per_axis, stride))
        weight = conv.weight[index].flip(list(range(2, 2 + dim)))
        phases.append(conv_nd(y, weight, conv.bias, groups=x.shape[1]))
    # phases along channels (a concat runtimes do in place), then one transpose to (N, C, n0, s0, n1, s1, ..)
    out = torch.cat(phases, dim=1).unflatten(1, tuple(stride) + (-1,))  # (N, *s, C, *n)
    order = [0, 1 + dim] + [i for a in range(dim) for i in (2 + dim + a, 1 + a)]
    out = out.permute(order)
    for a in range(dim):
        out = out.flatten(2 + a, 3 + a)
    return out[(slice(None), slice(None)) + tuple(slice(ld, None) for ld in lead)]


def _mlp(h: torch.Tensor, block: nn.Module) -> torch.Tensor:
    z = F.gelu(block.expand(_norm(h, block.norm)))
    if block.grn is not None:
        z = _grn(z, block.grn)
    return block.compress(z)


def _block(x: torch.Tensor, block: nn.Module) -> torch.Tensor:
    kind = type(block).__name__
    if kind == "MedNeXtUpBlock":
        out = _front_pad(_mlp(_depthwise_transposed(x, block.dw), block), block.dw)
        if block.shortcut is not None:
            out = out + _front_pad(block.shortcut(x), block.shortcut)
        return out
    out = _mlp(block.dw(x), block)
    if kind == "MedNeXtDownBlock":
        return out + block.shortcut(x) if block.shortcut is not None else out
    return out + x if block.residual else out


def _stage(x: torch.Tensor, blocks) -> torch.Tensor:
    for block in blocks:
        x = _block(x, block)
    return x


class PlainMedNeXt(nn.Module):
    """Channels-first MedNeXt forward on the parameters of ``net`` (full-resolution head only)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def smallest_input(self, batch: int = 1) -> tuple[int, ...]:
        """The smallest input the network takes: each axis one voxel per total stride. The graph has no
        shape-dependent steps, so tracing this input gives the same graph as any other (and costs a
        tiny forward instead of a full patch's)."""
        total = [1] * (len(self.net.stem.weight.shape) - 2)
        for down in self.net.down:
            total = [t * s for t, s in zip(total, down.dw.stride)]
        return (batch, self.net.stem.in_channels, *total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.stem(x)
        skips = []
        for enc, down in zip(n.encoder, n.down):
            x = _stage(x, enc)
            skips.append(x)
            x = _block(x, down)
        x = _stage(x, n.bottleneck)
        for i in reversed(range(len(n.up))):
            x = skips[i] + _block(x, n.up[i])
            x = _stage(x, n.decoder[i])
        return n.heads[0].proj(x)


def exportable(net: nn.Module) -> nn.Module:
    """The module an exporter should trace: MedNeXt through its plain formulation (full-resolution
    logits only, whatever its deep-supervision switch says), other networks as they are."""
    from mednext_fw.network_architectures.mednext.model import MedNeXt

    if isinstance(net, MedNeXt):
        return PlainMedNeXt(net).eval()
    return net.eval()
