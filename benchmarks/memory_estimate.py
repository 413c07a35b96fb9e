"""The network's training-memory estimate (``MedNeXt.training_memory``) vs measured peak memory.

For MedNeXt-S and -B at three patch shapes (isotropic reference topology, a non-cubic isotropic
patch, and a thick-slice patch with the planned anisotropic topology), each in its own child process:
build network + AdamW + Dice/CE deep-supervision loss, take the RSS, reset the peak (``clear_refs``),
run two training steps (fp32, batch 2, the first creates the AdamW state), and compare the peak RSS
growth with the estimate's ``growth`` (everything but the weights, which exist before the step).
With a GPU (``--device cuda``) it compares ``torch.cuda.max_memory_allocated`` with ``total`` instead.
Writes ``benchmarks/results/memory_estimate.md``.

    python3 benchmarks/memory_estimate.py            # ~5-10 min on 2 loaded cores
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

# (name, spacing, patch): the topology comes from the planner's rule for that spacing and patch
CASES = [
    ("iso 64^3", [1.0, 1.0, 1.0], [64, 64, 64]),
    ("iso 32x96x64", [1.0, 1.0, 1.0], [32, 96, 64]),
    ("aniso 6x1x1 mm 16x128x112", [6.0, 1.0, 1.0], [16, 128, 112]),
]
RESULTS = Path(__file__).resolve().parent / "results" / "memory_estimate.md"


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(variant: str, spacing: list[float], patch: list[int], batch: int, device: str) -> dict:
    import torch

    from mednext_fw.network_architectures.mednext import create_mednext
    from mednext_fw.planners.topology import plan_topology
    from mednext_fw.trainers.data.augmentation import nearest_downsample
    from mednext_fw.trainers.losses import DeepSupervisionLoss, DiceCELoss, deep_supervision_weights

    torch.manual_seed(0)
    torch.set_num_threads(2)
    topo = plan_topology(spacing, patch, 3)
    net = create_mednext(variant, 1, 2, deep_supervision=True, strides=topo.strides,
                         kernel_sizes=topo.kernel_sizes).to(device)
    scales = net.deep_supervision_scales
    loss_fn = DeepSupervisionLoss(DiceCELoss(), deep_supervision_weights(len(scales)))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, *patch, device=device)
    seg = (torch.rand(batch, 1, *patch) > 0.7).float().numpy()
    targets = [torch.from_numpy(nearest_downsample(seg, s)).to(device) for s in scales]
    estimate = net.training_memory(patch, batch, precision="fp32")

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x), targets).backward()
        opt.step()

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
        base = _rss_kb("VmRSS") * 1024
    t0 = time.perf_counter()
    for _ in range(2):
        step()
    wall = (time.perf_counter() - t0) / 2
    if device == "cuda":
        measured, predicted = torch.cuda.max_memory_allocated(), estimate.total
    else:
        measured, predicted = _rss_kb("VmHWM") * 1024 - base, estimate.growth
    return {"variant": variant, "patch": patch, "strides": topo.strides, "kernel_sizes": topo.kernel_sizes,
            "measured_mb": measured / 2**20, "estimate_mb": predicted / 2**20, "step_s": wall,
            "activations_mb": estimate.activations / 2**20, "transient_mb": estimate.transient / 2**20,
            "params_mb": (estimate.weights + estimate.gradients_and_optimizer) / 2**20}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=["S", "B"])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--no-write", action="store_true", help="print only, leave the results table alone")
    args = p.parse_args()
    if args.child:
        variant, spacing, patch = json.loads(args.child)
        print(json.dumps(child(variant, spacing, patch, args.batch, args.device)))
        return
    rows = []
    for variant in args.variants:
        for name, spacing, patch in CASES:
            cmd = [sys.executable, __file__, "--child", json.dumps([variant, spacing, patch]),
                   "--batch", str(args.batch), "--device", args.device]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["case"] = name
            r["ratio"] = r["estimate_mb"] / r["measured_mb"]
            rows.append(r)
            print(f"{variant} {name:28s} measured {r['measured_mb']:7.0f} MB  estimate {r['estimate_mb']:7.0f} MB  "
                  f"estimate/measured {r['ratio']:.2f}  step {r['step_s']:.1f} s", flush=True)
    worst = max(abs(r["ratio"] - 1) for r in rows)
    print(f"worst deviation {worst:.0%} (goal: within 25%)")
    if args.no_write:
        return
    what = "peak RSS growth over one training step" if args.device == "cpu" else "torch.cuda.max_memory_allocated"
    lines = [
        "# MedNeXt training-memory estimate vs measurement",
        "",
        f"`python3 benchmarks/memory_estimate.py --batch {args.batch} --device {args.device}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). Measured: {what}; fp32, batch {args.batch}, "
        "deep supervision, Dice+CE, AdamW; the estimate counts gradients + AdamW moments + activations + "
        "backward temporaries (weights excluded on CPU: they exist before the step). Topology from the planner's "
        "rule for the case's spacing.",
        "",
        "| variant | case | strides | kernel_sizes | measured MB | estimate MB | estimate / measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['case']} | {r['strides']} | {r['kernel_sizes']} | "
                     f"{r['measured_mb']:.0f} | {r['estimate_mb']:.0f} | {r['ratio']:.2f} |")
    lines += ["", f"Worst deviation: {worst:.0%} (goal: within +-25%)."]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
