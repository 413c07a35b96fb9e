"""Leave-one-anatomy-out check of the 2D classifier plug-ins on Dataset101_MRIPlanes, through the CLI.

Dataset101's five volumes are two people (SOURCES.md): Colin27 (``colin27_1mm``, ``colin27_2mm``) and
the MNI152 template (``mni152_1mm/2mm/3mm``). Fold 0 trains on every MNI152 slice and validates on
every Colin27 slice; fold 1 the reverse. ``splits_final.json`` is written before
``mednext_plan_and_preprocess`` (which keeps a user's splits), then each run is a plain
``mednext_train 2d_cls FOLD -d 101 -tr TRAINER`` and the accuracy is read from the final validation's
``summary.json``. Two pipelines, each in its own roots:

- ``old``: what the plug-ins did before: 8-bit /255 normalisation, no augmentation, no flips
  (plans edited: ``normalization ["rgb_0_1"]``, ``augmentation {"preset": "none"}``);
- ``new``: the planned defaults: per-image foreground z-score (channel "T1"), augmentation preset
  ``default``, left-right flips (declared safe for view planes in dataset.json: mirroring a slice
  left-right never changes its plane).

    python benchmarks/classification_loao.py --workdir /tmp/loao --out rows.jsonl [--trainers HoViT] [--epochs 15]
    python benchmarks/classification_loao.py --report rows.jsonl      # the markdown table of the rows
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "Dataset101_MRIPlanes"
NAME = "Dataset101_MRIPlanes"
ANATOMIES = ("mni152", "colin27")


def _run(args: list[str], env: dict[str, str]) -> float:
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.time() - t0


def stage_raw(raw: Path, pipeline: str) -> None:
    """A copy of Dataset101 whose images are links to the shared files and whose dataset.json says
    which flips are safe (the shared dataset.json is left as it is)."""
    dst = raw / NAME
    if dst.exists():
        return
    dst.mkdir(parents=True)
    (dst / "imagesTr").symlink_to((DATA / "imagesTr").resolve())
    meta = json.loads((DATA / "dataset.json").read_text())
    if pipeline == "new":
        meta["mirror_axes"] = [1]  # left-right flips keep a view plane; up-down or transposes are not used
    (dst / "dataset.json").write_text(json.dumps(meta, indent=2))


def anatomy_splits(raw: Path) -> list[dict[str, list[str]]]:
    ids = sorted(f"{p.parent.name}/{p.stem}" for p in (raw / NAME / "imagesTr").glob("*/*.png"))
    by = {a: [i for i in ids if i.split("/")[1].startswith(a)] for a in ANATOMIES}
    assert sum(map(len, by.values())) == len(ids), "every slice belongs to one anatomy"
    return [{"train": by["mni152"], "val": by["colin27"]}, {"train": by["colin27"], "val": by["mni152"]}]


def prepare(root: Path, pipeline: str, input_size: int, env: dict[str, str]) -> None:
    raw, pre = root / "raw", root / "preprocessed"
    stage_raw(raw, pipeline)
    (pre / NAME).mkdir(parents=True, exist_ok=True)
    (pre / NAME / "splits_final.json").write_text(json.dumps(anatomy_splits(raw), indent=1))
    _run(["mednext_fw.cli.plan_and_preprocess", "-d", "101", "--input-size", str(input_size), "-np", "1"], env)
    plans_file = pre / NAME / "plans.json"
    plans = json.loads(plans_file.read_text())
    cfg = plans["configurations"]["2d_cls"]
    cfg["extra"]["lr_schedule"] = "cosine"  # short runs: anneal (the recipes' constant LR needs long ones)
    if pipeline == "old":
        cfg["normalization"], cfg["mirror_axes"] = ["rgb_0_1"], []
        cfg["extra"]["augmentation"] = {"preset": "none"}
    plans_file.write_text(json.dumps(plans, indent=2))
    _run(["mednext_fw.cli.plan_and_preprocess", "-d", "101", "-np", "1"], env)  # re-caches if plans changed


def report(path: Path) -> str:
    """One markdown row per run (the last row wins when a run was repeated)."""
    rows = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        rows[(r["trainer"], r["pipeline"], r["fold"])] = r
    out = ["| plug-in | pipeline | train on -> validate on | accuracy | per case | epochs | wall s (load) |",
           "|---|---|---|---|---|---|---|"]
    for key in sorted(rows, key=lambda k: (k[0], k[1] != "old", k[2])):
        r = rows[key]
        cases = ", ".join(f"{c} {a:.3f}" for c, a in r["per_case"].items())
        out.append(f"| {r['trainer']} | {r['pipeline']} | {r['train_on']} -> {r['validate_on']} ({r['num_images']} "
                   f"slices) | **{r['accuracy']:.3f}** | {cases} | {r['epochs']} | {r['wall_s']:.0f} "
                   f"({r['load']:.0f}) |")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--report", type=Path, help="print the markdown table of a --out file and exit")
    p.add_argument("--workdir", type=Path)
    p.add_argument("--trainers", nargs="+", default=["HoViT", "XrayMoE"])
    p.add_argument("--pipelines", nargs="+", default=["old", "new"], choices=["old", "new"])
    p.add_argument("--folds", nargs="+", default=["0", "1"])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=None, help="default: each trainer's recipe")
    p.add_argument("--out", type=Path, default=None, help="append result rows (JSON lines) here")
    args = p.parse_args()
    if args.report:
        print(report(args.report))
        return 0
    if args.workdir is None:
        p.error("--workdir is required to run the check")
    rows = []
    for pipeline in args.pipelines:
        root = args.workdir / pipeline
        env = {**os.environ, "MEDNEXT_raw": str(root / "raw"), "MEDNEXT_preprocessed": str(root / "preprocessed"),
               "MEDNEXT_results": str(root / "results"), "OMP_NUM_THREADS": "1", "MEDNEXT_n_proc_DA": "1"}
        prepare(root, pipeline, args.input_size, env)
        for trainer in args.trainers:
            for fold in args.folds:
                cmd = ["mednext_fw.cli.train", "2d_cls", fold, "-d", "101", "-tr", trainer, "--epochs",
                       str(args.epochs), "--batch-size", str(args.batch_size), "--seed", str(args.seed),
                       "--device", "cpu", "--no-progress"] + (["--lr", str(args.lr)] if args.lr else [])
                wall = _run(cmd, env)
                fold_dir = root / "results" / NAME / f"{trainer}__2d_cls" / f"fold_{fold}"
                summary = json.loads((fold_dir / "validation" / "summary.json").read_text())
                row = {"pipeline": pipeline, "trainer": trainer, "fold": fold,
                       "train_on": ANATOMIES[int(fold)], "validate_on": ANATOMIES[1 - int(fold)],
                       "accuracy": summary["accuracy"], "balanced_accuracy": summary["balanced_accuracy"],
                       "per_case": {k: v["accuracy"] for k, v in summary["per_case"].items()},
                       "num_images": summary["num_samples"], "epochs": args.epochs, "wall_s": round(wall, 1),
                       "load": os.getloadavg()[0], "command": "mednext_train " + " ".join(cmd[1:])}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
