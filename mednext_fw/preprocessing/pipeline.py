"""One case from raw arrays to network-ready arrays; shared by preprocessing and inference.

Order (nnU-Net's): transpose -> crop to nonzero -> normalise -> resample -> class locations.
"""
from __future__ import annotations

import numpy as np

from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import ImageProperties
from mednext_fw.planners.plans import Configuration, Plans
from mednext_fw.planners.spacing import new_shape, resampled_spacing
from mednext_fw.preprocessing.case_properties import CaseProperties
from mednext_fw.preprocessing.class_locations import sample_class_locations
from mednext_fw.planners.cropping import crop_to_nonzero
from mednext_fw.preprocessing.normalization import normalize
from mednext_fw.preprocessing.resampling import resample_data


def preprocess_case(data: np.ndarray, image_props: ImageProperties, seg: np.ndarray | None, plans: Plans,
                    config: Configuration, dataset: DatasetJson, case_id: str
                    ) -> tuple[np.ndarray, np.ndarray | None, CaseProperties]:
    """``data`` ``(C, Z, Y, X)`` and optional ``seg`` ``(1, Z, Y, X)`` in the file's axis order ->
    float32 ``(C, *S)``, int16 ``(1, *S)`` (-1 outside the nonzero region) and the case properties."""
    axes = [0] + [a + 1 for a in plans.transpose_forward]
    data = data.transpose(axes)
    seg = seg.transpose(axes) if seg is not None else None
    spacing = [float(image_props.spacing[a]) for a in plans.transpose_forward]
    shape_before = [int(s) for s in data.shape[1:]]

    data, seg, bbox, mask = crop_to_nonzero(data, seg)
    shape_after = [int(s) for s in data.shape[1:]]

    data = normalize(data, config.normalization, config.use_mask_for_norm, mask,
                     plans.foreground_intensity_properties)
    target = resampled_spacing(config.dim, config.spacing, spacing)
    shape = new_shape(shape_after, spacing, target)
    data = resample_data(data, shape, spacing, target, order=3,
                         anisotropy_threshold=config.anisotropy_threshold, order_z=0)
    data = np.ascontiguousarray(data, dtype=np.float32)
    locations = {}
    if seg is not None:
        seg = resample_data(seg, shape, spacing, target, order=1, is_seg=True,
                            anisotropy_threshold=config.anisotropy_threshold, order_z=0)
        seg = np.ascontiguousarray(seg, dtype=np.int16)
        locations = sample_class_locations(seg, dataset.foreground_regions)
    props = CaseProperties(case_id=case_id, image=image_props, shape_before_cropping=shape_before, bbox=bbox,
                           shape_after_cropping=shape_after, spacing=spacing, spacing_after_resampling=target,
                           shape_after_resampling=[int(s) for s in data.shape[1:]], class_locations=locations)
    return data, seg, props
