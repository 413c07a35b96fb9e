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


def _layer_norm(x: torch.Tensor, norm: nn.Module) -> torch.Tensor:
    """``ChannelNorm`` 'layer': normalise over C at every voxel of (N, C, *S)."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    centred = x - x.mean(1, keepdim=True)
    var = centred.square().mean(1, keepdim=True)
    return centred * torch.rsqrt(var + norm.eps) * norm.weight.reshape(shape) + norm.bias.reshape(shape)


def _conv_nd(x: torch.Tensor):
    """The functional conv for (N, C, *S) tensors like ``x``."""
    return (F.conv1d, F.conv2d, F.conv3d)[x.dim() - 3]


def _front_planes(conv: nn.Module) -> list[int]:
    """Transposed convs give (n-1)s - 2p + k (+ output_padding) voxels per axis, the reference pads them
    to n*s: s + 2p - k - output_padding planes in front (0 on stride-1 axes)."""
    need = [s + 2 * p - k - o for s, p, k, o in zip(conv.stride, conv.padding, conv.kernel_size, conv.output_padding)]
    if min(need) < 0:
        raise ValueError(f"transposed conv {conv} overshoots its target size; cannot export")
    return need


class _ZeroPad(torch.autograd.Function):
    """``F.pad`` with zeros, exported as one ONNX ``Pad`` with constant pads: torch's exporter writes
    ~15 shape-arithmetic nodes per ``F.pad``, which made the up blocks' graph slower to export and to
    convert (these pads were ~1,900 of its 4,700 nodes)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, pads: tuple[tuple[int, int], ...]) -> torch.Tensor:
        return F.pad(x, [v for pair in reversed(pads) for v in pair])  # F.pad lists the last axis first

    @staticmethod
    def symbolic(g, x, pads):
        unpadded = [0, 0]  # batch and channels
        onnx_pads = unpadded + [p[0] for p in pads] + unpadded + [p[1] for p in pads]  # all begins, then all ends
        return g.op("Pad", x, g.op("Constant", value_t=torch.tensor(onnx_pads, dtype=torch.int64)), mode_s="constant")


def _zero_pad(y: torch.Tensor, pads) -> torch.Tensor:
    """Zeros before/after each spatial axis of (N, C, *S): ``pads`` = [(before, after)] per axis."""
    pads = tuple((int(a), int(b)) for a, b in pads)
    return _ZeroPad.apply(y, pads) if any(a or b for a, b in pads) else y


def _missing(phase, lead) -> list[int]:
    """Per axis, whether phase ``r``'s first plane (q = 0) is one of the ``lead`` planes, which are
    not outputs of the conv (lead < s, so at most that one plane)."""
    return [int(r < ld) for r, ld in zip(phase, lead)]


def _phase_outputs(x: torch.Tensor, conv: nn.Module) -> list[tuple[tuple[int, ...], torch.Tensor]]:
    """A depthwise transposed conv as one ordinary depthwise conv per output phase.

    Counted from ``lead`` planes before the conv's first output (``_front_planes``, so the phases
    tile the reference's padded n*s grid), phase ``r`` holds outputs ``s*q + r``, q < n: a
    correlation of ``x`` with the taps that reach it. Planes that are not outputs of the conv
    (``_missing``) hold whatever the taps give there; callers exclude them. Returned as (phase,
    outputs) in ``itertools.product`` order. Runtimes run depthwise ``ConvTranspose`` as a dense GEMM
    (OpenVINO: 45% of a MedNeXt-S forward on a 128^3 tile, for 4 of its ~170 layers). Shape-agnostic,
    so the graph keeps dynamic sides.
    """
    dim = x.dim() - 2
    stride, pad, kernel = conv.stride, conv.padding, conv.kernel_size
    lead = _front_planes(conv)
    conv_nd = _conv_nd(x)
    out = []
    for phase in itertools.product(*(range(s) for s in stride)):
        # counted from the lead planes, output s*q + r is the conv's s*q + (r - lead)
        per_axis = [phase_taps(s, p, k, r - ld) for s, p, k, ld, r in zip(stride, pad, kernel, lead, phase)]
        if not all(taps for taps, _ in per_axis):  # no tap reaches this phase: bias only
            bias = 0 if conv.bias is None else conv.bias.reshape((1, -1) + (1,) * dim)
            out.append((phase, torch.zeros_like(x) + bias))
            continue
        y, pads = x, []
        for axis, (taps, first) in enumerate(per_axis):  # crop/pad so a valid conv yields n outputs
            last = first + len(taps) - 1  # offsets run first..last for the taps in reverse order
            before = (slice(None),) * (2 + axis)  # slices, not narrow(): exporters keep them dynamic
            if first > 0:
                y = y[before + (slice(first, None),)]
            if last < 0:
                y = y[before + (slice(None, last),)]
            pads.append((max(0, -first), max(0, last)))
        y = _zero_pad(y, pads)
        index = (slice(None), slice(None)) + tuple(slice(t[0], t[-1] + 1, s) for (t, _), s in zip(per_axis, stride))
        weight = conv.weight[index].flip(list(range(2, 2 + dim)))
        out.append((phase, conv_nd(y, weight, conv.bias, groups=x.shape[1])))
    return out


def _interleave(phases: list[torch.Tensor], stride) -> torch.Tensor:
    """Equal-shaped phases (N, C, *n), in ``itertools.product`` order, to (N, C, *(n*s)): concatenated
    along channels (a concat runtimes do in place), then one transpose to (N, C, n0, s0, n1, s1, ..)."""
    dim = len(stride)
    out = torch.cat(phases, dim=1).unflatten(1, tuple(stride) + (-1,))  # (N, *s, C, *n)
    order = [0, 1 + dim] + [i for a in range(dim) for i in (2 + dim + a, 1 + a)]
    out = out.permute(order)
    for a in range(dim):
        out = out.flatten(2 + a, 3 + a)
    return out


def _valid_sum(z: torch.Tensor, missing: list[int]) -> torch.Tensor:
    """Spatial sum of ``z`` without its ``missing`` front planes, one axis at a time: ONNX Runtime and
    OpenVINO reduce one long axis with a plain fp32 running sum, which over a 128^3 tile put
    instance-norm outputs 4e-4 off; axis by axis (<= a few hundred terms each) it is 1e-5, like
    torch. The first sum runs over the whole tensor, so its missing plane is subtracted (slicing it
    off would copy the tensor); the later, small partial sums are sliced. Empty slices sum to 0."""
    for axis in range(z.dim() - 1, 1, -1):
        miss = missing[axis - 2]
        before = (slice(None),) * axis
        if axis == z.dim() - 1:
            total = z.sum(axis, keepdim=True)
            z = total - z[before + (slice(0, 1),)] if miss else total
        else:
            z = (z[before + (slice(1, None),)] if miss else z).sum(axis, keepdim=True)
    return z


def _count(z: torch.Tensor, missing: list[int]):
    """Voxels of ``z`` without its ``missing`` front planes."""
    n = 1
    for side, miss in zip(z.shape[2:], missing):
        n = n * (side - miss)  # traced sizes: the graph keeps dynamic sides
    return n


def _norm_pieces(pieces: list[torch.Tensor], missing: list[list[int]], norm: nn.Module,
                 fused: bool) -> list[torch.Tensor]:
    """``ChannelNorm`` of the tensor the pieces tile, applied piece by piece: 'group' = one group per
    channel (instance norm + affine, statistics over the planes each piece has), 'layer' = per voxel.

    ``fused`` writes a whole tensor's instance norm as one ONNX ``InstanceNormalization``. OpenVINO
    runs that as one MVN kernel: a MedNeXt-S 128^3 forward 1.2x faster, and nearer torch (max logit
    difference 3.5e-3 vs 9.5e-3) than the reductions below. ONNX Runtime's kernel sums in plain fp32
    (5e-4 off vs 6e-6), so graphs for it and ONNX files keep the reductions."""
    if norm.kind == "layer":
        return [_layer_norm(y, norm) for y in pieces]
    if fused and len(pieces) == 1 and not any(missing[0]):
        # torch.instance_norm, not F.instance_norm: the latter refuses the 1-voxel bottleneck of the
        # smallest input the export traces on
        return [torch.instance_norm(pieces[0], norm.weight, norm.bias, None, None, True, 0.0, norm.eps, False)]
    count = sum(_count(y, m) for y, m in zip(pieces, missing))
    mean = sum(_valid_sum(y, m) for y, m in zip(pieces, missing)) / count
    var = sum(_valid_sum((y - mean).square(), m) for y, m in zip(pieces, missing)) / count
    shape = (1, -1) + (1,) * (pieces[0].dim() - 2)
    rstd = torch.rsqrt(var + norm.eps)
    weight, bias = norm.weight.reshape(shape), norm.bias.reshape(shape)
    # this form, not one scale and shift per channel: with that, ONNX Runtime 1.32's identity
    # elimination broke graphs whose norms have equal (deduplicated) weights
    return [(y - mean) * rstd * weight + bias for y in pieces]


def _grn_pieces(pieces: list[torch.Tensor], missing: list[list[int]], grn: nn.Module) -> list[torch.Tensor]:
    gx = torch.sqrt(sum(_valid_sum(z.square(), m) for z, m in zip(pieces, missing)))
    nx = gx / (gx.mean(1, keepdim=True) + 1e-6)
    return [z + grn.gamma * (z * nx) + grn.beta for z in pieces]


def _mlp(pieces: list[torch.Tensor], missing: list[list[int]], block: nn.Module, fused: bool,
         extra_bias: torch.Tensor | None = None) -> list[torch.Tensor]:
    """norm -> expand -> GELU (-> GRN) -> compress on a tensor given as pieces that tile it (one, or an
    up block's phases, ``missing`` planes excluded): the norm and GRN reduce over the pieces, the rest
    is per voxel."""
    pieces = [F.gelu(block.expand(y)) for y in _norm_pieces(pieces, missing, block.norm, fused)]
    if block.grn is not None:
        pieces = _grn_pieces(pieces, missing, block.grn)
    compress = block.compress
    bias = compress.bias if extra_bias is None else compress.bias + extra_bias
    return [_conv_nd(z)(z, compress.weight, bias) for z in pieces]


def _zero_front(y: torch.Tensor, missing: list[int]) -> torch.Tensor:
    """``y`` with its ``missing`` front planes set to zero, by one multiply with a 0/1 mask of one channel."""
    if not any(missing):
        return y
    ones = torch.ones_like(y[(slice(0, 1), slice(0, 1)) + tuple(slice(m, None) for m in missing)])
    return y * _zero_pad(ones, [(m, 0) for m in missing])


def _up_block(x: torch.Tensor, block: nn.Module, fused: bool) -> torch.Tensor:
    """Up block computed phase by phase and interleaved once, at its narrowest (the output channels).

    The reference crops the transposed conv to its outputs, runs the MLP, pads zeros in front to n*s
    and adds the shortcut (a strided 1x1 transposed conv, padded alike). Per phase that is: the MLP on
    the phase (norm and GRN statistics over the conv's outputs in all phases), plus the shortcut's
    bias, plus its weights on the one phase they reach; zeros on the planes that are not outputs.
    Interleaving the dw output instead (twice the channels, then crop, norm and pad on the full grid)
    cost OpenVINO a fifth of a MedNeXt-S forward in layout shuffles.
    """
    dw, shortcut = block.dw, block.shortcut
    lead = _front_planes(dw)
    phases = _phase_outputs(x, dw)
    missing = [_missing(phase, lead) for phase, _ in phases]
    bodies = _mlp([y for _, y in phases], missing, block, fused, None if shortcut is None else shortcut.bias)
    if shortcut is not None:
        if _front_planes(shortcut) != lead:
            raise ValueError(f"up block shortcut {shortcut} is padded unlike its conv {dw}; cannot export")
        # the shortcut's weights land at s*i + lead: phase r = lead, every q
        weight = shortcut.weight.transpose(0, 1)  # transposed-conv (C_in, C_out, 1..) -> conv (C_out, C_in, 1..)
        bodies = [body + _conv_nd(x)(x, weight) if list(phase) == lead else body
                  for (phase, _), body in zip(phases, bodies)]
    return _interleave([_zero_front(body, m) for body, m in zip(bodies, missing)], dw.stride)


def _block(x: torch.Tensor, block: nn.Module, fused: bool) -> torch.Tensor:
    kind = type(block).__name__
    if kind == "MedNeXtUpBlock":
        return _up_block(x, block, fused)
    out = _mlp([block.dw(x)], [[0] * (x.dim() - 2)], block, fused)[0]
    if kind == "MedNeXtDownBlock":
        return out + block.shortcut(x) if block.shortcut is not None else out
    return out + x if block.residual else out


def _stage(x: torch.Tensor, blocks, fused: bool) -> torch.Tensor:
    for block in blocks:
        x = _block(x, block, fused)
    return x


class PlainMedNeXt(nn.Module):
    """Channels-first MedNeXt forward on the parameters of ``net`` (full-resolution head only);
    ``fused_norm``: instance norms as one op (for OpenVINO, see ``_norm_pieces``)."""

    def __init__(self, net: nn.Module, fused_norm: bool = False):
        super().__init__()
        self.net = net
        self.fused_norm = fused_norm

    def smallest_input(self, batch: int = 1) -> tuple[int, ...]:
        """The smallest input the network takes: each axis one voxel per total stride. The graph has no
        shape-dependent steps, so tracing this input gives the same graph as any other (and costs a
        tiny forward instead of a full patch's)."""
        total = [1] * (len(self.net.stem.weight.shape) - 2)
        for down in self.net.down:
            total = [t * s for t, s in zip(total, down.dw.stride)]
        return (batch, self.net.stem.in_channels, *total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, fused = self.net, self.fused_norm
        x = n.stem(x)
        skips = []
        for enc, down in zip(n.encoder, n.down):
            x = _stage(x, enc, fused)
            skips.append(x)
            x = _block(x, down, fused)
        x = _stage(x, n.bottleneck, fused)
        for i in reversed(range(len(n.up))):
            x = skips[i] + _block(x, n.up[i], fused)
            x = _stage(x, n.decoder[i], fused)
        return n.heads[0].proj(x)


def exportable(net: nn.Module, fused_norm: bool = False) -> nn.Module:
    """The module an exporter should trace: MedNeXt through its plain formulation (full-resolution
    logits only, whatever its deep-supervision switch says; ``fused_norm`` for OpenVINO), other
    networks as they are."""
    from mednext_fw.network_architectures.mednext.model import MedNeXt

    if isinstance(net, MedNeXt):
        return PlainMedNeXt(net, fused_norm).eval()
    return net.eval()
