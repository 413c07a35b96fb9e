"""Small BTCV-, Decathlon- and folder-shaped source datasets built from the real brain volumes.

The volumes are renamed and re-labelled, never synthesised: BTCV labels split the real brain mask
into 13 slabs along z (one per organ value), and the Decathlon 4D images stack a real T1 volume
with a half-intensity copy of itself.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

# Small real cases: 3 mm (61x73x61) and 2 mm (~90x108x90).
CASES = ("mni152_3mm", "colin27_2mm", "mni152_2mm")


def brain(shared: Path, case: str) -> tuple[sitk.Image, sitk.Image]:
    root = shared / "Dataset001_BrainMask"
    return (sitk.ReadImage(str(root / "imagesTr" / f"{case}_0000.nii.gz")),
            sitk.ReadImage(str(root / "labelsTr" / f"{case}.nii.gz")))


def write(img: sitk.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), useCompression=True)
    return path


def organ_slabs(mask: sitk.Image, n: int = 13) -> sitk.Image:
    """The brain mask cut into ``n`` slabs along z, valued 1..n (background stays 0)."""
    m = sitk.GetArrayFromImage(mask) > 0
    zs = np.nonzero(m.any(axis=(1, 2)))[0]
    z0, extent = zs.min(), zs.max() - zs.min() + 1
    slab = 1 + ((np.arange(m.shape[0]) - z0) * n // extent).clip(0, n - 1)
    out = sitk.GetImageFromArray((m * slab[:, None, None]).astype(np.uint8))
    out.CopyInformation(mask)
    return out


def stack_4d(img: sitk.Image) -> sitk.Image:
    """Two channels: the volume and a half-intensity copy, along a 4th axis."""
    f = sitk.Cast(img, sitk.sitkFloat32)
    return sitk.JoinSeries([f, f * 0.5])


def make_btcv(shared: Path, dst: Path) -> Path:
    """``dst/RawData/{Training/img,Training/label,Testing/img}`` with 3 training cases and 1 test case."""
    raw = dst / "RawData"
    for i, case in enumerate(CASES, start=1):
        img, mask = brain(shared, case)
        write(img, raw / "Training" / "img" / f"img{i:04d}.nii.gz")
        write(organ_slabs(mask), raw / "Training" / "label" / f"label{i:04d}.nii.gz")
    write(brain(shared, CASES[0])[0], raw / "Testing" / "img" / "img0061.nii.gz")
    return raw


def make_msd(shared: Path, dst: Path) -> Path:
    """``dst/Task05_Brain`` with two 4D training cases, one 4D test case and macOS ``._`` junk."""
    task = dst / "Task05_Brain"
    for i, case in enumerate(CASES[:2], start=1):
        img, mask = brain(shared, case)
        write(stack_4d(img), task / "imagesTr" / f"brain_{i:03d}.nii.gz")
        write(mask, task / "labelsTr" / f"brain_{i:03d}.nii.gz")
    write(stack_4d(brain(shared, CASES[2])[0]), task / "imagesTs" / "brain_003.nii.gz")
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (task / sub / "._brain_001.nii.gz").write_bytes(b"\x00\x05\x16\x07 Mac OS X resource fork")
    meta = {
        "name": "Brain", "description": "two-channel brain test task", "reference": "test", "licence": "CC-BY-SA",
        "release": "1.0", "tensorImageSize": "4D",
        "modality": {"0": "T1", "1": "T1half"},
        "labels": {"0": "background", "1": "brain"},
        "numTraining": 2, "numTest": 1,
        "training": [{"image": f"./imagesTr/brain_{i:03d}.nii.gz", "label": f"./labelsTr/brain_{i:03d}.nii.gz"}
                     for i in (1, 2)],
        "test": ["./imagesTs/brain_003.nii.gz"],
    }
    (task / "dataset.json").write_text(json.dumps(meta, indent=2))
    return task


def make_folders(shared: Path, dst: Path) -> tuple[Path, Path]:
    """``dst/images/X.nii.gz`` + ``dst/labels/X.nii.gz`` (plain names, values 0/1)."""
    root = shared / "Dataset001_BrainMask"
    for case in CASES[:2]:
        (dst / "images").mkdir(parents=True, exist_ok=True)
        (dst / "labels").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / "imagesTr" / f"{case}_0000.nii.gz", dst / "images" / f"{case}.nii.gz")
        shutil.copyfile(root / "labelsTr" / f"{case}.nii.gz", dst / "labels" / f"{case}.nii.gz")
    return dst / "images", dst / "labels"


def copy_tree(src: Path, dst: Path) -> Path:
    """A writable copy a test may damage."""
    shutil.copytree(src, dst)
    return dst
