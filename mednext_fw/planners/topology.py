"""The planned MedNeXt topology: which axes each stage downsamples, kernel sizes per level, depth.

The rule (nnU-Net's, applied to MedNeXt; written in README "Planning" and in every plan's notes):
at each stage, with the current per-axis spacing (the target spacing, doubled on an axis each time
it is downsampled) and feature-map size (the patch, halved likewise):
- the kernel of this level is 1 on an axis whose spacing is more than ``ANISO_RATIO`` (2) x the
  finest current spacing, and ``k`` (3 or 5) elsewhere: no mixing of 6 mm slices with 1 mm pixels;
- an axis is downsampled (stride 2) only while its spacing is <= 2 x the finest and its feature map
  stays >= ``MIN_FEATURE`` (4) voxels; otherwise its stride is 1;
- stages stop when no axis can be downsampled or after ``MAX_DOWN`` (4, the reference's) stages; the
  level reached is the bottleneck (its kernel follows the same rule).
Patch sides are then multiples of their axis's total stride (not 16 everywhere). At isotropic
spacing with a patch of >= 64 voxels per side this is exactly the reference MedNeXt.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

ANISO_RATIO = 2.0
MIN_FEATURE = 4
MAX_DOWN = 4
RULE = (f"topology rule: per stage, an axis is downsampled (stride 2) only while its current spacing is <= "
        f"{ANISO_RATIO:g}x the finest current spacing and its feature map stays >= {MIN_FEATURE} voxels; a level's "
        f"kernel is 1 on an axis whose spacing is > {ANISO_RATIO:g}x the finest there, else k; at most {MAX_DOWN} "
        f"stages; patch sides are multiples of their axis's total stride")


@dataclass(frozen=True)
class Topology:
    strides: list[list[int]]  # per down-sampling stage, per axis
    kernel_sizes: list[list[int]]  # per level (len(strides) + 1), per axis

    @property
    def total_strides(self) -> list[int]:
        return [math.prod(axis) for axis in zip(*self.strides)] if self.strides else [1] * len(self.kernel_sizes[0])

    def bottleneck_size(self, patch: Sequence[int]) -> list[int]:
        return [p // t for p, t in zip(patch, self.total_strides)]

    def describe(self, spacing: Sequence[float], patch: Sequence[int]) -> str:
        """Why: per axis, the levels where its kernel is 1 or its stride 1, and the bottleneck size."""
        parts = []
        for a, sp in enumerate(spacing):
            flat = [lvl for lvl, k in enumerate(self.kernel_sizes) if k[a] == 1]
            kept = [i for i, s in enumerate(self.strides) if s[a] == 1]
            if flat:
                parts.append(f"axis {a} ({sp:g} mm) is > {ANISO_RATIO:g}x the finest spacing at level(s) {flat}: "
                             f"kernel 1 there")
            if kept:
                parts.append(f"axis {a} is not downsampled at stage(s) {kept} (coarser than {ANISO_RATIO:g}x the "
                             f"finest, or its feature map would drop below {MIN_FEATURE})")
        why = "; ".join(parts) if parts else "isotropic enough: every axis downsampled at every stage, kernel k everywhere"
        return (f"{len(self.strides)} down-samplings, strides {self.strides}, kernel_sizes {self.kernel_sizes}, "
                f"bottleneck {self.bottleneck_size(patch)} voxels; {why}")


def plan_topology(spacing: Sequence[float], patch: Sequence[float], kernel_size: int = 3,
                  max_down: int = MAX_DOWN) -> Topology:
    """The topology for a patch (sizes may be fractional: the patch before rounding) at ``spacing``."""
    sp = [float(s) for s in spacing]
    size = [float(p) for p in patch]
    strides: list[list[int]] = []
    kernels: list[list[int]] = []
    while True:
        finest = min(sp)
        kernels.append([1 if s > ANISO_RATIO * finest else kernel_size for s in sp])
        if len(strides) == max_down:
            break
        stage = [2 if s <= ANISO_RATIO * finest and n / 2 >= MIN_FEATURE else 1 for s, n in zip(sp, size)]
        if 2 not in stage:
            break
        strides.append(stage)
        sp = [s * st for s, st in zip(sp, stage)]
        size = [n / st for n, st in zip(size, stage)]
    if not strides:  # a patch too small to downsample at all: one stage on its largest axis keeps a U-Net
        axis = max(range(len(size)), key=lambda a: size[a])
        strides.append([2 if a == axis else 1 for a in range(len(size))])
        kernels.append(list(kernels[0]))
    return Topology(strides, kernels)


def round_patch(patch: Sequence[float], topology: Topology) -> list[int]:
    """Each side rounded up to a multiple of its axis's total stride."""
    return [int(max(t, t * math.ceil(round(p, 6) / t))) for p, t in zip(patch, topology.total_strides)]
