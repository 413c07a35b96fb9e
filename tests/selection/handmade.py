"""Hand-made trained-model folders whose cross-validation outcome is known in advance.

Reference: a box in every case. Model "2d" is confident (0.9) on the box's left half and unsure
(0.4) on its right half; "3d_fullres" the other way round. Each alone finds half the box (Dice
2/3); their average (0.65 everywhere in the box) finds all of it (Dice 1), so a correct selection
must pick the ensemble.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mednext_fw.io.image_io import read_seg, write_seg
from mednext_fw.planners.plans import Configuration, Plans

NAME = "Dataset009_Hand"
SHAPE = (8, 10, 12)
CASES = ["c0", "c1", "c2", "c3"]
SPLITS = [{"train": ["c2", "c3"], "val": ["c0", "c1"]}, {"train": ["c0", "c1"], "val": ["c2", "c3"]}]
DATASET = {"channel_names": {"0": "MRI"}, "labels": {"background": 0, "box": 1}, "numTraining": 4,
           "file_ending": ".nii.gz"}


def reference() -> np.ndarray:
    seg = np.zeros(SHAPE, np.uint8)
    seg[2:6, 2:8, 2:10] = 1
    return seg


def probabilities(config: str) -> np.ndarray:
    fg = np.full(SHAPE, 0.05, np.float32)
    left, right = (0.9, 0.4) if config == "2d" else (0.4, 0.9)
    fg[2:6, 2:8, 2:6] = left
    fg[2:6, 2:8, 6:10] = right
    return np.stack([1 - fg, fg])


def _write_label(seg: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(seg.astype(np.uint8))
    img.SetSpacing((1.5, 1.0, 2.0))
    sitk.WriteImage(img, str(path))


def _config(name: str, dim: int) -> Configuration:
    return Configuration(name=name, dim=dim, spacing=[1.0] * dim, patch_size=[16] * dim, batch_size=2,
                         median_image_size=list(SHAPE[-dim:]), normalization=["zscore"], use_mask_for_norm=[False])


def build(roots: dict[str, Path], configs=("2d", "3d_fullres"), folds=(0, 1)) -> Path:
    """Preprocessed dataset files and one model folder per configuration; returns the results folder."""
    pre = roots["preprocessed"] / NAME
    pre.mkdir(parents=True)
    (pre / "dataset.json").write_text(json.dumps(DATASET))
    (pre / "splits_final.json").write_text(json.dumps(SPLITS))
    Plans(dataset_name=NAME, configurations={c: _config(c, 2 if c == "2d" else 3) for c in
                                             ("2d", "3d_fullres")}).save(pre / "plans.json")
    for case in CASES:
        _write_label(reference(), pre / "gt_segmentations" / f"{case}.nii.gz")
    results = roots["results"] / NAME
    for config in configs:
        model = results / f"MedNeXtTrainer__{config}"
        model.mkdir(parents=True)
        (model / "dataset.json").write_text(json.dumps(DATASET))
        for fold in folds:
            val = model / f"fold_{fold}" / "validation"
            val.mkdir(parents=True)
            (model / f"fold_{fold}" / "checkpoint_final.pth").write_bytes(b"not used by the selection")
            probs = probabilities(config)
            for case in SPLITS[fold]["val"]:
                np.savez_compressed(val / f"{case}.npz", probabilities=probs)
                _write_label(probs.argmax(0), val / f"{case}.nii.gz")
            summary = {"metric_per_case": [{"case": c} for c in SPLITS[fold]["val"]]}
            (val / "summary.json").write_text(json.dumps(summary))
    return results


def label(path: Path) -> np.ndarray:
    return read_seg(path)[0][0]


__all__ = ["build", "label", "reference", "probabilities", "write_seg", "NAME", "CASES"]
