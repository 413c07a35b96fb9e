"""A small synthetic preprocessed dataset in the contract layout (through the real ``preprocess_case``).

Each case is a noisy bright ball ("organ") inside a dimmer head-like ball; outside the head the image is
0, so crop-to-nonzero and the -1 label band are exercised as on real MRI.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from mednext_fw.io.atomic import write_json_atomic
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import read_images, read_seg, write_seg
from mednext_fw.planners.plans import Configuration, NetworkPlan, Plans
from mednext_fw.planners.splits import ensure_splits
from mednext_fw.preprocessing import preprocess_case
from mednext_fw.preprocessing.folder import PreprocessedFolder

TINY_NET = {"n_channels": 4, "block_counts": [1] * 9}
NAME = "Dataset900_Synth"


def _case_arrays(rng: np.random.RandomState, shape: Sequence[int], labels: int) -> tuple[np.ndarray, np.ndarray]:
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"))
    centre = np.asarray(shape)[:, None, None, None] / 2 + rng.uniform(-2, 2, (3, 1, 1, 1))
    dist = np.sqrt(((grid - centre) ** 2).sum(0))
    head = dist < min(shape) * 0.45
    seg = np.zeros(shape, np.uint8)
    seg[dist < min(shape) * rng.uniform(0.2, 0.28)] = 1
    if labels > 1:
        seg[(dist < min(shape) * 0.1)] = 2
    img = np.where(head, 100 + 80 * seg + rng.normal(0, 10, shape), 0).astype(np.float32)
    return img, seg


def make_synthetic_dataset(root: Path, n_cases: int = 4, shape: Sequence[int] = (32, 32, 32),
                           patch: Sequence[int] = (16, 16, 16), labels: dict | None = None, seed: int = 0,
                           network: dict | None = None) -> Path:
    """Write raw files, then the preprocessed folder under ``root/preprocessed/NAME``; return the latter."""
    labels = labels or {"background": 0, "organ": 1}
    n_fg = len([k for k in labels if k not in ("background", "ignore")])
    rng = np.random.RandomState(seed)
    raw = root / "raw" / NAME
    pre = root / "preprocessed" / NAME
    for sub in ("imagesTr", "labelsTr"):
        (raw / sub).mkdir(parents=True, exist_ok=True)
    ds_dict = {"channel_names": {"0": "MR"}, "labels": labels, "numTraining": n_cases, "file_ending": ".nii.gz",
               "name": "Synth"}
    write_json_atomic(ds_dict, raw / "dataset.json")
    dataset = DatasetJson.load(raw / "dataset.json")
    config = Configuration(
        name="3d_fullres", dim=3, spacing=[1.0, 1.0, 1.0], patch_size=list(patch), batch_size=2,
        median_image_size=list(shape), normalization=["zscore"], use_mask_for_norm=[True],
        network=NetworkPlan(name="mednext", variant="S", kernel_size=3, kwargs=dict(network or TINY_NET)),
        data_identifier="mednextPlans_3d_fullres", mirror_axes=[0, 1, 2])
    plans = Plans(dataset_name=NAME, original_median_spacing=[1.0, 1.0, 1.0], original_median_shape=list(shape),
                  configurations={"3d_fullres": config})
    folder = PreprocessedFolder(pre)
    cases = folder.configuration(config.data_identifier, config.name)
    cases.prepare({"synthetic": seed}, [f"case_{i:03d}" for i in range(n_cases)])
    folder.gt_dir.mkdir(exist_ok=True)
    for i in range(n_cases):
        case = f"case_{i:03d}"
        img, seg = _case_arrays(rng, shape, labels=max(1, n_fg))
        for arr, path in ((img, raw / "imagesTr" / f"{case}_0000.nii.gz"), (seg, raw / "labelsTr" / f"{case}.nii.gz")):
            im = sitk.GetImageFromArray(arr)
            im.SetSpacing((1.0, 1.0, 1.0))
            sitk.WriteImage(im, str(path))
        data, props = read_images([raw / "imagesTr" / f"{case}_0000.nii.gz"])
        seg_arr, _ = read_seg(raw / "labelsTr" / f"{case}.nii.gz")
        d, s, cp = preprocess_case(data, props, seg_arr, plans, config, dataset, case)
        cases.write_case(case, d, s, cp)
        write_seg(seg_arr[0], props, folder.gt_dir / f"{case}.nii.gz")
    plans.save(folder.plans_file)
    dataset.save(folder.dataset_file)
    if n_cases >= 2:  # as planning does: the trainer only reads the split
        ensure_splits(folder.splits_file, [f"case_{i:03d}" for i in range(n_cases)])
    return pre
