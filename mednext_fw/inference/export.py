"""Probabilities in preprocessed space -> label map (and probabilities) on the input's own grid.

Order: resample to the cropped shape at the original spacing (linear; separate-z with nearest
neighbour along the low-resolution axis of anisotropic data), convert to labels, paste into the
uncropped shape, transpose back, write with the input's format and geometry.

Memory stays bounded for large images: a few output slices at a time are resampled class by
class and folded into a running argmax (or painted region by region), so beyond the probabilities
only the label map is full-size unless resampled probabilities are requested. Label maps are uint8
(uint16 beyond 255 labels), and un-cropping copies nothing when the crop kept everything.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mednext_fw.io.atomic import atomic_path
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import write_seg
from mednext_fw.planners.plans import Configuration, Plans
from mednext_fw.preprocessing.case_properties import CaseProperties
from mednext_fw.preprocessing.resampling import resample_rows


@dataclass
class ExportSpec:
    """What export needs from the plans, small enough to send to a worker process."""

    transpose_backward: list[int]
    anisotropy_threshold: float
    dataset: DatasetJson

    @classmethod
    def from_plans(cls, plans: Plans, config: Configuration, dataset: DatasetJson) -> "ExportSpec":
        return cls(list(plans.transpose_backward), float(config.anisotropy_threshold), dataset)


_SLAB = 8  # slices per step of the argmax: its temporaries stay slab-sized


def label_dtype(dataset: DatasetJson) -> type:
    """The smallest unsigned type that holds every label value (a uint8 map is a quarter of int32's)."""
    values = [int(x) for v in dataset.labels.values() for x in (v if isinstance(v, (list, tuple)) else [v])]
    return np.uint8 if max(values + list(dataset.regions_class_order or []), default=0) < 256 else np.uint16


def _class_rows(channel: np.ndarray, spec: ExportSpec, props: CaseProperties, rows: slice) -> np.ndarray:
    """Rows of one class, back on the cropped original grid (a view when no resampling is needed)."""
    target = [int(s) for s in props.shape_after_cropping]
    if list(channel.shape) == target:
        return channel[rows].astype(np.float32, copy=False)
    return resample_rows(channel, target, props.spacing_after_resampling, props.spacing, rows, order=1,
                         anisotropy_threshold=spec.anisotropy_threshold, order_z=0)


def labels_in_cropped_space(probs: np.ndarray, spec: ExportSpec, props: CaseProperties,
                            keep_probabilities: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """``(K, *S_pre)`` probabilities -> label map in the cropped, transposed grid (and, if asked,
    the resampled probabilities).

    Streams ``_SLAB`` output rows at a time through resampling and argmax (ties keep the lower
    class) or region painting, so beyond ``probs`` only the label map is full-size, unless the
    resampled probabilities are asked for.
    """
    dataset = spec.dataset
    shape = [int(s) for s in props.shape_after_cropping]
    if probs.ndim != len(shape) + 1:
        raise ValueError(f"probabilities of shape {probs.shape} do not match a spatial shape {shape}")
    same_grid = list(probs.shape[1:]) == shape
    seg = np.zeros(shape, label_dtype(dataset))
    kept = None
    if keep_probabilities:
        kept = probs.astype(np.float32, copy=False) if same_grid else np.empty((probs.shape[0], *shape), np.float32)
    order = dataset.regions_class_order or list(range(1, probs.shape[0] + 1))
    for start in range(0, shape[0], _SLAB):
        rows = slice(start, min(start + _SLAB, shape[0]))
        best = None
        for k in range(probs.shape[0]):
            p = _class_rows(probs[k], spec, props, rows)
            if kept is not None and not same_grid:
                kept[k, rows] = p
            if dataset.has_regions:
                seg[rows][p > 0.5] = order[k]
            elif best is None:
                best = p.copy()  # p may be a view of probs
            else:
                better = p > best
                seg[rows][better] = k
                np.maximum(best, p, out=best)
    return seg, kept


def _crop_slices(props: CaseProperties) -> tuple[slice, ...]:
    return tuple(slice(int(a), int(b)) for a, b in props.bbox)


def uncrop_and_transpose(seg: np.ndarray, spec: ExportSpec, props: CaseProperties) -> np.ndarray:
    """The label map in the file's own array order; a view when the crop box was the whole image."""
    full_shape = [int(s) for s in props.shape_before_cropping]
    if list(seg.shape) == full_shape:
        return seg.transpose(spec.transpose_backward)
    full = np.zeros(full_shape, dtype=seg.dtype)
    full[_crop_slices(props)] = seg
    return full.transpose(spec.transpose_backward)


def uncrop_probabilities(probs: np.ndarray, spec: ExportSpec, props: CaseProperties) -> np.ndarray:
    full = np.zeros((probs.shape[0], *[int(s) for s in props.shape_before_cropping]), np.float32)
    if not spec.dataset.has_regions:
        full[0] = 1.0  # outside the crop box is background with certainty
    full[(slice(None), *_crop_slices(props))] = probs
    return full.transpose([0] + [a + 1 for a in spec.transpose_backward])


def to_native(probs: np.ndarray, spec: ExportSpec, props: CaseProperties, postprocessing=None,
              with_probabilities: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Native label map (``(Z, Y, X)`` in the file's own array order) and optionally native
    probabilities ``(K, Z, Y, X)``."""
    seg, kept = labels_in_cropped_space(probs, spec, props, with_probabilities)
    native = uncrop_and_transpose(seg, spec, props)
    if postprocessing is not None:
        from mednext_fw.inference.postprocessing import apply_postprocessing

        native = apply_postprocessing(native, postprocessing, spec.dataset)
    native_probs = uncrop_probabilities(kept, spec, props) if kept is not None else None
    return native, native_probs


def export_case(probs: np.ndarray, spec: ExportSpec, props: CaseProperties, output_path: str | Path,
                probabilities_path: str | Path | None = None, postprocessing=None) -> Path:
    """Write the label map (and the ``.npz`` of probabilities, key ``probabilities``) atomically.

    The probabilities are written first, so a label file on disk implies a complete case.
    """
    seg, native_probs = to_native(probs, spec, props, postprocessing, probabilities_path is not None)
    if probabilities_path is not None:
        with atomic_path(probabilities_path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, probabilities=native_probs)
    write_seg(seg, props.image, output_path)
    return Path(output_path)
