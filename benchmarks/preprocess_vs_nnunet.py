"""Preprocessing speed, peak memory and agreement: mednext_fw vs nnU-Net v2 on the same raw data.

Dataset001_BrainMask is replicated (hard links) to N cases under benchmarks/_work/, both tools
preprocess 3d_fullres at a forced 1 mm spacing with 2 processes, each in its own subprocess whose
process tree's summed RSS is sampled for the peak. Then the resampled arrays are compared case by
case: Pearson correlation of the images and Dice of the foreground label.

Run with the bench venv (nnunetv2, blosc2, psutil installed):
    /work/main/.venv-bench/bin/python benchmarks/preprocess_vs_nnunet.py --cases 20
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
SRC = Path(os.environ.get("MEDNEXT_SHARED_DATA", REPO.parent / "shared" / "data")) / "Dataset001_BrainMask"
NAME = "Dataset900_BenchBrain"
BIN = Path(sys.executable).parent


def replicate(raw: Path, n: int) -> None:
    d = raw / NAME
    if d.exists():
        shutil.rmtree(d)
    (d / "imagesTr").mkdir(parents=True)
    (d / "labelsTr").mkdir()
    cases = sorted(p.name[:-len(".nii.gz")] for p in (SRC / "labelsTr").glob("*.nii.gz"))
    for i in range(n):
        src = cases[i % len(cases)]
        os.link(SRC / "imagesTr" / f"{src}_0000.nii.gz", d / "imagesTr" / f"c{i:03d}_{src}_0000.nii.gz")
        os.link(SRC / "labelsTr" / f"{src}.nii.gz", d / "labelsTr" / f"c{i:03d}_{src}.nii.gz")
    ds = json.loads((SRC / "dataset.json").read_text())
    ds["numTraining"] = n
    (d / "dataset.json").write_text(json.dumps(ds))


def run_measured(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds and peak summed RSS (GiB) of the command's process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            procs = [root] + root.children(recursive=True)
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{proc.stderr.read().decode()[-3000:]}")
    return wall, peak / 2 ** 30


def compare(ours_dir: Path, nn_dir: Path) -> tuple[list[float], list[float]]:
    import blosc2

    corr, dice = [], []
    for f in sorted(ours_dir.glob("*_seg.npy")):
        case = f.name[:-len("_seg.npy")]
        a, s = np.load(ours_dir / f"{case}.npy"), np.load(f)
        b = blosc2.open(str(nn_dir / f"{case}.b2nd"), mode="r")[:]
        t = blosc2.open(str(nn_dir / f"{case}_seg.b2nd"), mode="r")[:]
        assert a.shape == b.shape, (case, a.shape, b.shape)
        corr.append(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]))
        x, y = s == 1, t == 1
        dice.append(float(2 * (x & y).sum() / max(1, x.sum() + y.sum())))
    return corr, dice


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("-np", type=int, default=2)
    args = ap.parse_args()
    work = REPO / "benchmarks" / "_work" / "preprocess"
    raw, pre_nn, pre_ours = work / "raw", work / "pre_nnunet", work / "pre_ours"
    for p in (pre_nn, pre_ours):
        shutil.rmtree(p, ignore_errors=True)
        p.mkdir(parents=True)
    raw.mkdir(parents=True, exist_ok=True)
    replicate(raw, args.cases)
    env = dict(os.environ, nnUNet_raw=str(raw), nnUNet_preprocessed=str(pre_nn), nnUNet_results=str(work / "res"),
               MEDNEXT_raw=str(raw), MEDNEXT_preprocessed=str(pre_ours), nnUNet_compile="f")
    np_ = str(args.np)
    nn_cmd = [str(BIN / "nnUNetv2_plan_and_preprocess"), "-d", "900", "-c", "3d_fullres", "-np", np_,
              "-npfp", np_, "-overwrite_target_spacing", "1", "1", "1", "--no_pbar"]
    ours_cmd = [sys.executable, "-m", "mednext_fw.cli.plan_and_preprocess", "-d", "900", "-c", "3d_fullres",
                "-np", np_, "--spacing", "1", "1", "1"]
    t_ours, m_ours = run_measured(ours_cmd, env)
    t_nn, m_nn = run_measured(nn_cmd, env)
    corr, dice = compare(pre_ours / NAME / "mednextPlans_3d_fullres", pre_nn / NAME / "nnUNetPlans_3d_fullres")
    print(f"cases {args.cases}, -np {args.np}, 3d_fullres at 1 mm (ours incl. integrity check; nnU-Net without)")
    print(f"wall time   ours {t_ours:7.1f} s   nnU-Net {t_nn:7.1f} s   speed-up {t_nn / t_ours:5.2f}x")
    print(f"peak RSS    ours {m_ours:7.2f} GiB nnU-Net {m_nn:7.2f} GiB ratio {m_ours / m_nn:5.2f}")
    print(f"image corr  min {min(corr):.6f} mean {np.mean(corr):.6f}   label Dice min {min(dice):.5f} "
          f"mean {np.mean(dice):.5f}  ({len(dice)} cases)")


if __name__ == "__main__":
    main()
