"""Peak host memory of ``mednext_predict`` on a CT-sized volume, against the sizes it must hold.

Issue 16, Deliver 6: a 512 x 512 x 300 volume should predict holding no more than one float32
probability volume per class beyond the input. This writes a synthetic CT-like volume of that size
(int16 NIfTI, 0.8 x 0.8 x 2.5 mm), a model folder with a tiny MedNeXt planned at the volume's own
spacing (so no resampling: the preprocessed grid is the native one), runs ``mednext_predict`` (torch
backend, no TTA) in a child process per setting and reports its peak RSS (GNU time's %M) in units of
one float32 volume (N voxels x 4 bytes): the input as read is 1 such volume, the probabilities K of them.

    python3 benchmarks/predict_memory.py --workdir /tmp/predict_memory [--folds 1 2] [--step-size 1.0]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHAPE_ZYX = (300, 512, 512)
SPACING_XYZ = (0.8, 0.8, 2.5)


def make_inputs(work: Path) -> Path:
    import numpy as np
    import SimpleITK as sitk

    images = work / "images"
    path = images / "ct_0000.nii.gz"
    if not path.is_file():
        images.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        z, y, x = np.ogrid[:SHAPE_ZYX[0], :SHAPE_ZYX[1], :SHAPE_ZYX[2]]
        body = ((y - 256) ** 2 + (x - 256) ** 2) < 200 ** 2
        vol = np.where(body, 40, -1000).astype(np.int16) + rng.integers(-20, 20, SHAPE_ZYX, dtype=np.int16)
        img = sitk.GetImageFromArray(vol)
        img.SetSpacing(SPACING_XYZ)
        sitk.WriteImage(img, str(path))
    return images


def make_model(work: Path, folds: int, patch: list[int]) -> Path:
    sys.path.insert(0, str(REPO))
    from tests.inference.model_factory import brain_plans, make_model_folder

    shared = Path(os.environ.get("MEDNEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
    plans = brain_plans(spacing=SPACING_XYZ[::-1], patch=patch, mirror_axes=())
    return make_model_folder(work / f"results_{folds}", shared / "Dataset001_BrainMask", folds=range(folds), plans=plans)


def run(model: Path, images: Path, out: Path, step: float) -> dict:
    cmd = ["/usr/bin/time", "-f", "MAXRSS_KB %M", sys.executable, "-m", "mednext_fw.cli.predict", "-m", str(model), "-i", str(images), "-o", str(out),
           "--disable-tta", "--backend", "torch", "--device", "cpu", "--step-size", str(step), "-np", "0",
           "--overwrite"]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    peak_kb = int(next(line for line in proc.stderr.splitlines()[::-1] if line.startswith("MAXRSS_KB")).split()[1])
    return {"wall_s": time.time() - t0, "peak_gib": peak_kb / 2 ** 20}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/predict_memory"))
    p.add_argument("--folds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--step-size", type=float, default=1.0, help="tile stride (memory does not depend on it)")
    p.add_argument("--patch", type=int, nargs=3, default=[80, 160, 160])
    args = p.parse_args()
    images = make_inputs(args.workdir)
    volume_gib = SHAPE_ZYX[0] * SHAPE_ZYX[1] * SHAPE_ZYX[2] * 4 / 2 ** 30
    for folds in args.folds:
        model = make_model(args.workdir, folds, args.patch)
        r = run(model, images, args.workdir / f"out_{folds}", args.step_size)
        print(json.dumps({"folds": folds, "classes": 2, "volume_gib": round(volume_gib, 3), **r,
                          "peak_in_volumes": round(r["peak_gib"] / volume_gib, 2)}), flush=True)


if __name__ == "__main__":
    main()
