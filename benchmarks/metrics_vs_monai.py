"""NSD + HD95 per case: mednext_fw.evaluation vs MONAI, same masks, same process.

Cases: the 1 mm brain masks of Dataset001_BrainMask (colin27_1mm, mni152_1mm), each against
three perturbed versions (eroded twice, dilated once, shifted by (2, -1, 3) voxels). MONAI runs
``compute_surface_dice`` + ``compute_hausdorff_distance(percentile=95)`` (two calls, as a user
would); ours runs one ``surface_metrics`` call (which also returns ASSD). Both single-threaded by
default (our code is numpy/scipy; ``--threads`` sets torch's thread count for MONAI).

    python benchmarks/metrics_vs_monai.py [--data DIR] [--repeats 3] [--tolerance-mm 1.0]
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from mednext_fw.evaluation.surface import surface_metrics
from mednext_fw.io.image_io import read_seg

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "Dataset001_BrainMask"


def _best_time(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _monai(ref, pred, spacing, tol):
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice

    def onehot(m):
        return torch.from_numpy(np.stack([~m, m])[None].astype(np.float32))
    y, yp = onehot(ref), onehot(pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nsd = compute_surface_dice(yp, y, [tol], spacing=list(spacing)).item()
        hd = compute_hausdorff_distance(yp, y, percentile=95, spacing=list(spacing)).item()
    return nsd, hd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tolerance-mm", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"{'case':<28}{'NSD ours':>12}{'NSD MONAI':>12}{'HD95 ours':>11}{'HD95 MONAI':>12}"
          f"{'ours s':>9}{'MONAI s':>9}{'speed-up':>10}")
    for name in ("colin27_1mm", "mni152_1mm"):
        seg, props = read_seg(args.data / "labelsTr" / f"{name}.nii.gz")
        ref = seg[0] > 0
        spacing = props.spacing
        for kind, pred in (("eroded2", ndimage.binary_erosion(ref, iterations=2)),
                           ("dilated1", ndimage.binary_dilation(ref)),
                           ("shifted", np.roll(ref, (2, -1, 3), axis=(0, 1, 2)))):
            t_ours, ours = _best_time(lambda: surface_metrics(ref, pred, spacing, args.tolerance_mm), args.repeats)
            t_monai, (nsd, hd) = _best_time(lambda: _monai(ref, pred, spacing, args.tolerance_mm), args.repeats)
            rows.append((t_ours, t_monai, abs(ours["NSD"] - nsd), abs(ours["HD95"] - hd)))
            print(f"{name + ' ' + kind:<28}{ours['NSD']:>12.7f}{nsd:>12.7f}{ours['HD95']:>11.5f}{hd:>12.5f}"
                  f"{t_ours:>9.3f}{t_monai:>9.3f}{t_monai / t_ours:>9.1f}x")
    t = np.array(rows)
    print(f"\nmean per case: ours {t[:, 0].mean():.3f} s, MONAI {t[:, 1].mean():.3f} s, "
          f"speed-up {t[:, 1].mean() / t[:, 0].mean():.1f}x (min {np.min(t[:, 1] / t[:, 0]):.1f}x); "
          f"max |dNSD| {t[:, 2].max():.2e}, max |dHD95| {t[:, 3].max():.2e} mm")


if __name__ == "__main__":
    main()
