"""How long a prediction will take, said before it starts: tiles x TTA x folds x a measured tile time.

The tile time is measured on the real device with the real network (``Predictor.measure_tile_seconds``);
the count of forward passes follows the sliding window's own tiling. Export (resampling the
probabilities back to the input's grid, writing the file) is added per native voxel, a rate measured
on the project's CPU; it is a small share of the total except for tiny networks on large images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from mednext_fw.durations import format_duration
from mednext_fw.inference.tiling import compute_steps, num_tiles

# Resampling 2 classes of probabilities to the native grid, argmax and writing .nii.gz, per native
# voxel, on the 2-core dev CPU (colin27 1 mm, 7.1 M voxels: ~7 s). Scales with the classes.
EXPORT_SECONDS_PER_VOXEL_CLASS = 0.5e-6


def tiles_per_image(shape: Sequence[int], patch: Sequence[int], step_size: float) -> int:
    """Sliding-window tiles for one preprocessed image (2D models over 3D images: per slice)."""
    shape = [int(s) for s in shape]
    slices = 1
    if len(shape) == len(patch) + 1:
        slices, shape = shape[0], shape[1:]
    padded = [max(s, p) for s, p in zip(shape, patch)]
    return slices * num_tiles(compute_steps(padded, patch, step_size))


def preprocessed_shape(native_size_xyz: Sequence[int], native_spacing_xyz: Sequence[float],
                       transpose_forward: Sequence[int], target_spacing: Sequence[float]) -> list[int]:
    """The shape an image will have after preprocessing (before cropping: an upper bound)."""
    size, spacing = list(native_size_xyz)[::-1], list(native_spacing_xyz)[::-1]  # -> numpy (z, y, x)
    size = [size[a] for a in transpose_forward]
    spacing = [spacing[a] for a in transpose_forward]
    target = list(target_spacing)
    if len(target) == len(size) - 1:  # a 2D configuration keeps the slice axis
        target = [spacing[0]] + target
    return [max(1, round(n * s / t)) for n, s, t in zip(size, spacing, target)]


@dataclass
class PredictionEstimate:
    cases: int
    forward_passes: int  # tiles x TTA mirrorings x folds, over every case
    tile_seconds: float | None  # None: not measured (a job of a pass or two is not worth a pass to time)
    export_seconds: float

    @property
    def seconds(self) -> float:
        return self.forward_passes * (self.tile_seconds or 0.0) + self.export_seconds

    def describe(self) -> str:
        head = f"{self.cases} case(s): {self.forward_passes} network passes (tiles x TTA x folds)"
        if self.tile_seconds is None:
            return f"{head}, too few to be worth timing; export ~{format_duration(self.export_seconds)}"
        return (f"{head} x {self.tile_seconds:.3f} s measured + export ~{format_duration(self.export_seconds)} "
                f"= ~{format_duration(self.seconds)}")


def estimate_prediction(shapes: Sequence[Sequence[int]], native_voxels: Sequence[float], patch: Sequence[int],
                        step_size: float, num_mirror_axes: int, num_folds: int, tile_seconds: float | None,
                        num_classes: int) -> PredictionEstimate:
    passes = sum(tiles_per_image(s, patch, step_size) for s in shapes) * (2 ** num_mirror_axes) * num_folds
    export = EXPORT_SECONDS_PER_VOXEL_CLASS * max(num_classes, 2) * float(math.fsum(native_voxels))
    return PredictionEstimate(len(shapes), passes, tile_seconds, export)
