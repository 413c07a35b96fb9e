"""Peak host memory of ``mednext_predict`` on a CT-sized volume, against the sizes it must hold.

Issue 16, Deliver 6: a 512 x 512 x 300 volume should predict holding no more than one float32
probability volume per class beyond the input. This writes a synthetic CT-like volume of that size
(int16 NIfTI, 0.8 x 0.8 x 2.5 mm) and model folders with a tiny MedNeXt, runs ``mednext_predict``
(torch backend, no TTA, default export settings) in a child process per setting and reports its
peak RSS (GNU time's %M).

What does not grow with the volume (imports, the model, one tile's activations) is measured by the
same command on a volume of one patch; the rest, in units of one float32 volume (N voxels x 4
bytes), is what the goal counts: the input (1) plus K probability volumes. Settings: 1 or 2 folds
(folds share one accumulator), and a plan at the volume's own spacing (no resampling) or at
2.5 x 1 x 1 mm (resampled there and back).

    python3 benchmarks/predict_memory.py --workdir /tmp/predict_memory [--folds 1 2] [--plans native resampled]
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
PLAN_SPACING_ZYX = {"native": SPACING_XYZ[::-1], "resampled": (2.5, 1.0, 1.0)}


def write_volume(path: Path, shape_zyx) -> Path:
    import numpy as np
    import SimpleITK as sitk

    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        z, y, x = np.ogrid[:shape_zyx[0], :shape_zyx[1], :shape_zyx[2]]
        cy, cx = shape_zyx[1] // 2, shape_zyx[2] // 2
        body = ((y - cy) ** 2 + (x - cx) ** 2) < (0.4 * min(shape_zyx[1:])) ** 2
        vol = np.where(body, 40, -1000).astype(np.int16) + rng.integers(-20, 20, shape_zyx, dtype=np.int16)
        img = sitk.GetImageFromArray(vol)
        img.SetSpacing(SPACING_XYZ)
        sitk.WriteImage(img, str(path))
    return path.parent


def make_model(work: Path, folds: int, patch: list[int], plan: str) -> Path:
    sys.path.insert(0, str(REPO))
    from tests.inference.model_factory import brain_plans, make_model_folder

    shared = Path(os.environ.get("MEDNEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
    plans = brain_plans(spacing=PLAN_SPACING_ZYX[plan], patch=patch, mirror_axes=())
    return make_model_folder(work / f"results_{plan}_{folds}", shared / "Dataset001_BrainMask", folds=range(folds),
                             plans=plans)


def run(model: Path, images: Path, out: Path) -> dict:
    cmd = ["/usr/bin/time", "-f", "MAXRSS_KB %M", sys.executable, "-m", "mednext_fw.cli.predict", "-m", str(model),
           "-i", str(images), "-o", str(out), "--disable-tta", "--backend", "torch", "--device", "cpu",
           "--step-size", "1.0", "--overwrite"]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    peak_kb = int(next(line for line in proc.stderr.splitlines()[::-1] if line.startswith("MAXRSS_KB")).split()[1])
    return {"wall_s": round(time.time() - t0, 1), "peak_gib": round(peak_kb / 2 ** 20, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/predict_memory"))
    p.add_argument("--folds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--plans", nargs="+", choices=sorted(PLAN_SPACING_ZYX), default=["native", "resampled"])
    p.add_argument("--patch", type=int, nargs=3, default=[80, 160, 160])
    args = p.parse_args()
    big = write_volume(args.workdir / "images" / "ct_0000.nii.gz", SHAPE_ZYX)
    one_tile = write_volume(args.workdir / "tile_images" / "ct_0000.nii.gz", tuple(args.patch))
    volume_gib = SHAPE_ZYX[0] * SHAPE_ZYX[1] * SHAPE_ZYX[2] * 4 / 2 ** 30
    for plan in args.plans:
        for folds in args.folds:
            model = make_model(args.workdir, folds, args.patch, plan)
            fixed = run(model, one_tile, args.workdir / f"tile_out_{plan}_{folds}")
            r = run(model, big, args.workdir / f"out_{plan}_{folds}")
            grown = (r["peak_gib"] - fixed["peak_gib"]) / volume_gib
            print(json.dumps({"plan": plan, "folds": folds, "classes": 2, "volume_gib": round(volume_gib, 3), **r,
                              "fixed_gib": fixed["peak_gib"], "volume_dependent_in_volumes": round(grown, 2),
                              "goal_in_volumes": 1 + 2}), flush=True)


if __name__ == "__main__":
    main()
