"""The same short training alone and beside one busy process, in one run: how much does a neighbour cost?

A fair share of 2 cores with one other busy process costs 1.5-2x; before the CPU-share defaults
(``mednext_fw.devices``: threads and workers from the usable cores and the load, OpenMP threads that
sleep instead of spin) it cost 20-50x. Each round trains the embedded demo data (CPU plan, seed 0,
a fixed number of iterations, no final validation) as a child process, in this order:

    ours alone | ours + busy | old defaults alone | old defaults + busy

"old defaults" = what ``mednext_train`` did before: torch's default threads (all cores), one
augmentation worker on 2 cores, spinning OpenMP threads (``OMP_WAIT_POLICY=ACTIVE``). The busy
process is one pure-Python spin loop (one core). The number compared is the sum of the epoch times
in ``training_log.txt`` (start-up excluded); the load average before each run is printed, because
on a shared machine "alone" is only as alone as the others let it be.

    python benchmarks/under_load.py --rounds 1 --epochs 2 --iters 15
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPIN = "while True: pass"


def prepare(work: Path) -> dict[str, str]:
    from mednext_fw.demo import DEMO_DATA

    env = dict(os.environ)
    for k in ("raw", "preprocessed", "results"):
        (work / k).mkdir(parents=True, exist_ok=True)
        env[f"MEDNEXT_{k}"] = str(work / k)
    shutil.copytree(DEMO_DATA / "Dataset001_BrainMask", work / "raw" / "Dataset001_BrainMask")
    subprocess.run([sys.executable, "-m", "mednext_fw.cli.plan_and_preprocess", "-d", "1", "-c", "3d_fullres",
                    "--device", "cpu"], env=env, check=True, stdout=subprocess.DEVNULL)
    return env


def train_seconds(env: dict[str, str], work: Path, tag: str, extra: list[str], epochs: int, iters: int,
                  old: bool) -> tuple[float, float]:
    """(sum of epoch times, wall time) of one training run into its own results folder."""
    env = dict(env, MEDNEXT_results=str(work / f"results_{tag}"))
    if old:
        env["OMP_WAIT_POLICY"] = "ACTIVE"
    cmd = [sys.executable, "-m", "mednext_fw.cli.train", "3d_fullres", "all", "-d", "1", "--no-final-val",
           "--no-progress", "--seed", "0", "--epochs", str(epochs), "--iters-per-epoch", str(iters),
           "--val-iters", "3", *extra]
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    log = next(Path(env["MEDNEXT_results"]).rglob("training_log.txt")).read_text()
    epoch_times = [float(t) for t in re.findall(r"Epoch \d+: .* time ([\d.]+)s", log)]
    shutil.rmtree(env["MEDNEXT_results"])
    return sum(epoch_times), wall


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--iters", type=int, default=15)
    p.add_argument("--skip-old", action="store_true", help="only our defaults (the old ones take long when loaded)")
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    old_flags = ["--threads", str(cores), "--num-workers", str(max(1, cores // 2))]
    configs = [("ours", [], False)] + ([] if args.skip_old else [("old", old_flags, True)])
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="under_load_") as tmp:
        work = Path(tmp)
        env = prepare(work)
        for r in range(args.rounds):
            for name, extra, old in configs:
                for loaded in (False, True):
                    hog = subprocess.Popen([sys.executable, "-c", SPIN]) if loaded else None
                    try:
                        time.sleep(1.0 if loaded else 0.0)
                        load = os.getloadavg()[0]
                        epochs_s, wall = train_seconds(env, work, f"{name}_{loaded}_{r}", extra, args.epochs,
                                                       args.iters, old)
                    finally:
                        if hog is not None:
                            hog.kill()
                            hog.wait()
                    key = f"{name} {'+ busy' if loaded else 'alone'}"
                    results.setdefault(key, []).append(epochs_s)
                    print(f"round {r + 1} {key:<18} epochs {epochs_s:7.1f} s  wall {wall:7.1f} s  "
                          f"(load average before: {load:.1f})", flush=True)
    print("\nslowdown beside one busy process (epoch time loaded / alone, per round):")
    for name, _, _ in configs:
        ratios = [b / a for a, b in zip(results[f"{name} alone"], results[f"{name} + busy"])]
        spread = f" (min {min(ratios):.2f}, max {max(ratios):.2f})" if len(ratios) > 1 else ""
        print(f"  {name:<5} {statistics.median(ratios):.2f}x{spread}" + ("  goal <= 2.5x" if name == "ours" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
