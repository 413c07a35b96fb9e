"""Rebuild the demo data embedded in ``mednext_fw/demo/data`` from ``../shared/data``.

Derived, small copies: Dataset001_BrainMask resampled to 3 mm isotropic (linear for images,
nearest for labels, same origin and direction), and Dataset101_MRIPlanes with every PNG shrunk so
its longer side is at most 64 pixels. Attribution travels in ``mednext_fw/demo/ATTRIBUTION.md``.

    python tools/make_demo_data.py [--shared ../shared/data]
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import SimpleITK as sitk
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TARGET_MM = 3.0
MAX_SIDE = 64


def resample(img: sitk.Image, interpolator) -> sitk.Image:
    spacing = img.GetSpacing()
    size = [max(1, round(n * s / TARGET_MM)) for n, s in zip(img.GetSize(), spacing)]
    return sitk.Resample(img, size, sitk.Transform(), interpolator, img.GetOrigin(), (TARGET_MM,) * 3,
                         img.GetDirection(), 0, img.GetPixelID())


def build_brain(src: Path, dst: Path) -> None:
    for sub in ("imagesTr", "labelsTr"):
        (dst / sub).mkdir(parents=True)
        for f in sorted((src / sub).glob("*.nii.gz")):
            img = sitk.ReadImage(str(f))
            if sub == "imagesTr":
                out = resample(sitk.Cast(img, sitk.sitkFloat32), sitk.sitkLinear)
            else:
                out = resample(img, sitk.sitkNearestNeighbor)
            sitk.WriteImage(out, str(dst / sub / f.name), useCompression=True)
    ds = json.loads((src / "dataset.json").read_text())
    ds["description"] = "Demo copy of Dataset001_BrainMask resampled to 3 mm; see ATTRIBUTION.md"
    (dst / "dataset.json").write_text(json.dumps(ds, indent=2) + "\n")


def build_planes(src: Path, dst: Path) -> None:
    for f in sorted((src / "imagesTr").glob("*/*.png")):
        out = dst / "imagesTr" / f.parent.name / f.name
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(f) as im:
            im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            im.save(out, optimize=True)
    shutil.copy(src / "dataset.json", dst / "dataset.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    out = REPO / "mednext_fw" / "demo" / "data"
    if out.exists():
        shutil.rmtree(out)
    build_brain(args.shared / "Dataset001_BrainMask", out / "Dataset001_BrainMask")
    build_planes(args.shared / "Dataset101_MRIPlanes", out / "Dataset101_MRIPlanes")
    print(f"demo data written to {out}")


if __name__ == "__main__":
    main()
