"""Tiny synthetic raw datasets for fast tests (nnU-Net raw layout)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def write_nifti(arr: np.ndarray, path: Path, spacing=(1.0, 1.0, 1.0)) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))


def make_dataset(root: Path, name: str = "Dataset005_Tiny", n_cases: int = 3, channels: int = 1,
                 shape=(12, 14, 16), spacing=(1.0, 1.0, 1.0), labels=None, ending: str = ".nii.gz") -> Path:
    """Blob images with a cube label; returns the dataset folder."""
    d = root / name
    rng = np.random.default_rng(0)
    for i in range(n_cases):
        seg = np.zeros(shape, np.uint8)
        seg[3:8, 4:9, 5:11] = 1
        for c in range(channels):
            img = (rng.normal(size=shape) + 5 * seg + 10).astype(np.float32)
            write_nifti(img, d / "imagesTr" / f"case{i}_{c:04d}{ending}", spacing)
        write_nifti(seg, d / "labelsTr" / f"case{i}{ending}", spacing)
    ds = {"channel_names": {str(c): "MRI" for c in range(channels)},
          "labels": labels or {"background": 0, "blob": 1}, "numTraining": n_cases, "file_ending": ending}
    (d / "dataset.json").write_text(json.dumps(ds))
    return d


def make_png_dataset(root: Path, name: str = "Dataset006_Png", n_cases: int = 4, size=(40, 36)) -> Path:
    from PIL import Image

    d = root / name
    (d / "imagesTr").mkdir(parents=True)
    (d / "labelsTr").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n_cases):
        seg = np.zeros(size, np.uint8)
        seg[10:25, 8 + i:20 + i] = 1
        seg[28:34, 5:12] = 2
        img = np.clip(rng.normal(size=size) * 10 + 60 + 80 * (seg > 0), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / "imagesTr" / f"p{i}_0000.png")
        Image.fromarray(seg).save(d / "labelsTr" / f"p{i}.png")
    ds = {"channel_names": {"0": "xray"}, "labels": {"background": 0, "a": 1, "b": 2},
          "numTraining": n_cases, "file_ending": ".png"}
    (d / "dataset.json").write_text(json.dumps(ds))
    return d


def module_roots(root: Path, shared_data: Path, monkeypatch, dataset: str = "Dataset001_BrainMask") -> Path:
    """raw/preprocessed/results roots below ``root`` (the MEDNEXT_* variables set through ``monkeypatch``)
    with a copy of a shared raw dataset: the start of the module-scoped end-to-end fixtures."""
    import shutil

    for k in ("raw", "preprocessed", "results"):
        (root / k).mkdir()
        monkeypatch.setenv(f"MEDNEXT_{k}", str(root / k))
    shutil.copytree(shared_data / dataset, root / "raw" / dataset)
    return root
