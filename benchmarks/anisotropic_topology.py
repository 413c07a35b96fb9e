"""Planned (adaptive) MedNeXt topology vs the isotropic-stride network on thick-slice data.

Dataset003_BrainMaskThick (1 x 1 x 6 mm): planned and preprocessed once; fold 0 trains on the MNI152
heads and validates on the Colin27 heads (the two anatomies on opposite sides). Both networks train
on the same plan (spacing, patch, batch, augmentation), the same seed and the same training budget
(a callback ends training at the first epoch boundary past it); then the full final validation
(sliding window, export to native geometry, Dice and NSD). Only the topology differs:
- adaptive: the planner's rule (``planners.topology.plan_topology``) for the benchmark's patch at the
  plan's spacing ([1, 2, 2] strides and [1, 3, 3] kernels first);
- isotropic: 4 stages of stride 2 and 3x3x3 kernels everywhere (the reference MedNeXt).
The patch is the plan's, shrunk to a CPU budget with sides that both networks accept (multiples of 16).
The budget is wall-clock seconds on a quiet machine; on a shared, loaded one (``--budget-kind cpu``,
the default) it is this process's CPU seconds (augmentation runs in-process, ``num_workers=0``), so
both networks get the same compute whatever the other users do. Wall time is reported too.

    python3 benchmarks/anisotropic_topology.py --budget-s 240 --workdir /tmp/aniso_bench
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASET = "Dataset003_BrainMaskThick"
ISO = {"strides": [[2, 2, 2]] * 4, "kernel_sizes": [[3, 3, 3]] * 5}


def prepare(workdir: Path, patch: list[int], width: int) -> dict:
    from mednext_fw.cli import plan_and_preprocess
    from mednext_fw.planners.plans import Plans
    from mednext_fw.planners.topology import plan_topology

    for key in ("raw", "preprocessed", "results"):
        (workdir / key).mkdir(parents=True, exist_ok=True)
        os.environ[f"MEDNEXT_{key}"] = str(workdir / key)
    raw = workdir / "raw" / DATASET
    if not raw.exists():
        shutil.copytree(DATA / DATASET, raw)
    pre = workdir / "preprocessed" / DATASET
    if not (pre / "plans.json").is_file():
        rc = plan_and_preprocess.main(["-d", DATASET, "-c", "3d_fullres", "-np", "1"])
        if rc not in (0, None):
            raise SystemExit(f"plan_and_preprocess failed ({rc})")
    plans = Plans.load(pre / "plans.json")
    planned = plans.configurations["3d_fullres"]
    # The planner's rule applied to the benchmark's patch (the plan's topology fits the plan's patch).
    topo = plan_topology(planned.spacing, patch, planned.network.kernel_size)
    adaptive = replace(planned, name="3d_adaptive", patch_size=list(patch), batch_size=2,
                       network=replace(planned.network, kwargs={"n_channels": width}, strides=topo.strides,
                                       kernel_sizes=topo.kernel_sizes))
    iso = replace(adaptive, name="3d_isotropic", network=replace(adaptive.network, **ISO))
    plans.configurations.update({"3d_adaptive": adaptive, "3d_isotropic": iso})
    plans.save(pre / "plans.json")
    cases = sorted(p.name[: -len("_0000.nii.gz")] for p in (raw / "imagesTr").glob("*_0000.nii.gz"))
    split = [{"train": [c for c in cases if c.startswith("mni152")], "val": [c for c in cases if c.startswith("colin27")]}]
    (pre / "splits_final.json").write_text(json.dumps(split))
    return {"planned_patch": planned.patch_size, "planned_strides": planned.network.strides,
            "planned_kernels": planned.network.kernel_sizes, "spacing": planned.spacing, "split": split[0]}


def step_gflop(network, batch: int, in_channels: int, patch: list[int]) -> float:
    """Arithmetic of one training step (forward and backward of every deep-supervision output)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(batch, in_channels, *patch)
    with FlopCounterMode(display=False) as counter:
        outputs = network(x)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        sum(o.float().mean() for o in outputs).backward()
    network.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9


def train_one(config: str, budget_s: float, seed: int, iters: int, kind: str) -> dict:
    from mednext_fw.trainers.experiment import SegmentationSpec
    from mednext_fw.trainers.segmentation import MedNeXtTrainer
    from mednext_fw.trainers.settings import TrainingSettings

    clock = time.process_time if kind == "cpu" else time.perf_counter
    t0, w0 = clock(), time.perf_counter()
    train_time = {"s": 0.0, "wall": 0.0, "epochs": 0}

    def stop_when_spent(trainer) -> None:
        train_time.update(s=clock() - t0, wall=time.perf_counter() - w0, epochs=trainer.epoch)
        if train_time["s"] >= budget_s:
            trainer.settings.num_epochs = trainer.epoch

    settings = TrainingSettings(num_epochs=10_000, iters_per_epoch=iters, val_iters=1, num_workers=0, seed=seed,
                                device="cpu", final_validation=True, final_validation_tta=False, progress_bar=False)
    trainer = MedNeXtTrainer(SegmentationSpec(DATASET, configuration=config, fold="0"), settings,
                             callbacks=[stop_when_spent])
    trainer.run()
    summary = json.loads((trainer.exp.fold_dir / "validation" / "summary.json").read_text())
    fg = summary["foreground_mean"]
    steps = train_time["epochs"] * iters
    cfg = trainer.exp.config
    gflop = step_gflop(trainer.network.train(), cfg.batch_size, trainer.network_builder()["kwargs"]["in_channels"],
                      cfg.patch_size)
    return {"gflop_per_step": gflop, "config": config, "train_s": train_time["s"], "wall_s": train_time["wall"], "steps": steps,
            "s_per_step": train_time["s"] / max(steps, 1),
            "dice": fg["Dice"], "nsd": fg["NSD"], "strides": trainer.exp.config.network.strides,
            "params": sum(p.numel() for p in trainer.network.parameters())}


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/mednext_aniso_bench"))
    p.add_argument("--budget-s", type=float, default=240.0, help="training budget per network, seconds")
    p.add_argument("--budget-kind", choices=["cpu", "wall"], default="cpu",
                   help="cpu: this process's CPU seconds (fair on a loaded machine); wall: wall-clock seconds")
    p.add_argument("--patch", type=int, nargs=3, default=[16, 96, 96])
    p.add_argument("--width", type=int, default=8, help="MedNeXt-S base width (32 in the paper; 8 fits a CPU)")
    p.add_argument("--iters-per-epoch", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--configs", nargs="+", default=["3d_adaptive", "3d_isotropic"],
                   help="run only these (e.g. each in its own process and --workdir, side by side)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    info = prepare(args.workdir, args.patch, args.width)
    print(f"plan: spacing {info['spacing']}, planned patch {info['planned_patch']}, strides {info['planned_strides']}, "
          f"kernels {info['planned_kernels']}; benchmark patch {args.patch}, width {args.width}, batch 2; "
          f"train {info['split']['train']}, validate {info['split']['val']}", flush=True)
    rows = []
    for config in args.configs:
        shutil.rmtree(args.workdir / "results" / DATASET / f"MedNeXtTrainer__{config}", ignore_errors=True)
        r = train_one(config, args.budget_s, args.seed, args.iters_per_epoch, args.budget_kind)
        rows.append(r)
        print(f"{config:13s} strides {r['strides']}: {r['steps']} steps in {r['train_s']:.0f} {args.budget_kind} s "
              f"({r['s_per_step']:.2f} s/step, {r['gflop_per_step']:.1f} GFLOP/step; wall {r['wall_s']:.0f} s), Dice {r['dice']:.4f}, NSD {r['nsd']:.4f}, {r['params']} params",
              flush=True)
    if len(rows) != 2:
        return
    a, i = rows
    print(f"adaptive - isotropic: Dice {a['dice'] - i['dice']:+.4f}, NSD {a['nsd'] - i['nsd']:+.4f}; "
          f"step time ratio adaptive/isotropic {a['s_per_step'] / i['s_per_step']:.2f}, "
          f"arithmetic ratio {a['gflop_per_step'] / i['gflop_per_step']:.2f}")


if __name__ == "__main__":
    main()
