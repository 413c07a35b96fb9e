"""The shape of a MedNeXt: per-stage strides per axis, per-level kernel sizes per axis, depth.

A MedNeXt with ``n`` down-samplings has ``n + 1`` resolution levels (level ``n`` is the bottleneck).
``strides[i]`` is the per-axis stride (1 or 2) of down block ``i`` (level i -> i+1) and of the
matching up block; ``kernel_sizes[l]`` is the per-axis depthwise kernel of every block at level
``l`` (the down block leaving level ``l`` and the up block arriving at it use that level's kernel,
as the reference uses one kernel everywhere). The reference is ``n = 4``, stride 2 and one odd
``k`` on every axis.

Per-stage lists (``exp_r``, ``block_counts``) have ``2n + 1`` entries ``[enc0..enc(n-1), bottleneck,
dec(n-1)..dec0]``. ``stage_lists`` cuts a variant's 9-entry lists to fewer levels by dropping the
deepest encoder/decoder stages and keeping the bottleneck's value, so a shallower S stays an S.
"""
from __future__ import annotations

import math
from typing import Sequence

from mednext_fw.errors import UserError

Shape = tuple[int, ...]


class TopologyError(UserError, ValueError):
    """An impossible topology; the message names the offending argument."""


def reference_topology(dim: int, kernel_size: int = 3, n_down: int = 4) -> tuple[tuple[Shape, ...], tuple[Shape, ...]]:
    return ((2,) * dim,) * n_down, ((kernel_size,) * dim,) * (n_down + 1)


def normalise_topology(strides, kernel_sizes, dim: int, where: str = "") -> tuple[tuple[Shape, ...], tuple[Shape, ...]]:
    """Check and convert nested lists to tuples. ``where`` prefixes the key names in errors."""
    p = f"{where}." if where else ""
    try:
        s = tuple(tuple(int(v) for v in stage) for stage in strides)
        k = tuple(tuple(int(v) for v in level) for level in kernel_sizes)
    except (TypeError, ValueError):
        raise TopologyError(f"{p}strides / {p}kernel_sizes must be lists of per-axis integer lists") from None
    if not 1 <= len(s) <= 6:
        raise TopologyError(f"{p}strides: need 1 to 6 down-sampling stages, got {len(s)}")
    for i, stage in enumerate(s):
        if len(stage) != dim:
            raise TopologyError(f"{p}strides[{i}] = {list(stage)}: needs {dim} values (one per axis)")
        if any(v not in (1, 2) for v in stage):
            raise TopologyError(f"{p}strides[{i}] = {list(stage)}: every stride must be 1 or 2")
    if len(k) != len(s) + 1:
        raise TopologyError(f"{p}kernel_sizes: needs {len(s) + 1} levels (one more than the {len(s)} entries of "
                            f"{p}strides), got {len(k)}")
    for i, level in enumerate(k):
        if len(level) != dim:
            raise TopologyError(f"{p}kernel_sizes[{i}] = {list(level)}: needs {dim} values (one per axis)")
        if any(v < 1 or v % 2 == 0 for v in level):
            raise TopologyError(f"{p}kernel_sizes[{i}] = {list(level)}: kernel sizes must be odd and >= 1")
    return s, k


def total_strides(strides: Sequence[Sequence[int]]) -> list[int]:
    """Per-axis product of all strides: every input side must be a multiple of it."""
    return [math.prod(axis) for axis in zip(*strides)]


def level_scales(strides: Sequence[Sequence[int]]) -> list[tuple[float, ...]]:
    """Per level (0 = full resolution .. bottleneck), the size of its feature map relative to the input."""
    scales = [tuple(1.0 for _ in strides[0])]
    for stage in strides:
        scales.append(tuple(s / v for s, v in zip(scales[-1], stage)))
    return scales


def check_divisible(size: Sequence[int], strides: Sequence[Sequence[int]], what: str = "input") -> None:
    totals = total_strides(strides)
    bad = [(a, n, t) for a, (n, t) in enumerate(zip(size, totals)) if n % t]
    if bad:
        detail = ", ".join(f"axis {a}: {n} is not a multiple of {t}" for a, n, t in bad)
        raise TopologyError(f"{what} {list(size)} does not fit strides {[list(s) for s in strides]} "
                            f"(sides must be multiples of the per-axis total stride {totals}; {detail})")


def stage_lists(values: Sequence[int], n_down: int, name: str) -> tuple[int, ...]:
    """A per-stage list for ``n_down`` levels: as given (2n+1 entries) or cut from the reference's 9."""
    values = tuple(int(v) for v in values)
    if len(values) == 2 * n_down + 1:
        return values
    if len(values) == 9 and n_down < 4:
        return values[:n_down] + (values[4],) + values[9 - n_down:]
    raise TopologyError(f"MedNeXt {name} needs {2 * n_down + 1} entries [enc0..{n_down - 1}, bottleneck, "
                        f"dec{n_down - 1}..0] for {n_down} down-samplings (9 entries for the reference's 4), "
                        f"got {len(values)}")
