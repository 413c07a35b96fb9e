"""Probabilities in preprocessed space -> label map (and probabilities) on the input's own grid.

Order: resample to the cropped shape at the original spacing (linear; separate-z with nearest
neighbour along the low-resolution axis of anisotropic data), convert to labels, paste into the
uncropped shape, transpose back, write with the input's format and geometry.

Memory stays bounded for large images: classes are resampled one at a time and folded into a
running argmax (or painted region by region), so no resampled ``(K, *S)`` array exists unless
probabilities are requested.
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
from mednext_fw.preprocessing.resampling import resample_data


@dataclass
class ExportSpec:
    """What export needs from the plans, small enough to send to a worker process."""

    transpose_backward: list[int]
    anisotropy_threshold: float
    dataset: DatasetJson

    @classmethod
    def from_plans(cls, plans: Plans, config: Configuration, dataset: DatasetJson) -> "ExportSpec":
        return cls(list(plans.transpose_backward), float(config.anisotropy_threshold), dataset)


def _resample_channel(channel: np.ndarray, spec: ExportSpec, props: CaseProperties) -> np.ndarray:
    """Back from the preprocessed grid (spacing from the case properties) to the cropped original grid."""
    target = [int(s) for s in props.shape_after_cropping]
    if list(channel.shape) == target:
        return channel.astype(np.float32, copy=False)
    return resample_data(channel[None], target, props.spacing_after_resampling, props.spacing, order=1,
                         anisotropy_threshold=spec.anisotropy_threshold, order_z=0)[0]


def labels_in_cropped_space(probs: np.ndarray, spec: ExportSpec, props: CaseProperties,
                            keep_probabilities: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """``(K, *S_pre)`` probabilities -> label map in the cropped, transposed grid (and, if asked,
    the resampled probabilities)."""
    dataset = spec.dataset
    shape = [int(s) for s in props.shape_after_cropping]
    kept = np.empty((probs.shape[0], *shape), np.float32) if keep_probabilities else None
    seg = np.zeros(shape, np.int32)
    if dataset.has_regions:
        order = dataset.regions_class_order or list(range(1, probs.shape[0] + 1))
        for k in range(probs.shape[0]):
            p = _resample_channel(probs[k], spec, props)
            seg[p > 0.5] = order[k]
            if kept is not None:
                kept[k] = p
    else:
        best = None
        for k in range(probs.shape[0]):
            p = _resample_channel(probs[k], spec, props)
            if best is None:
                best = p.copy()
            else:
                better = p > best  # ties keep the lower class, like argmax
                seg[better] = k
                np.maximum(best, p, out=best)
            if kept is not None:
                kept[k] = p
    return seg, kept


def _crop_slices(props: CaseProperties) -> tuple[slice, ...]:
    return tuple(slice(int(a), int(b)) for a, b in props.bbox)


def uncrop_and_transpose(seg: np.ndarray, spec: ExportSpec, props: CaseProperties) -> np.ndarray:
    full = np.zeros([int(s) for s in props.shape_before_cropping], dtype=seg.dtype)
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
