"""What only a GPU can check, in one short run (driven by ``benchmarks/gpu_check.sh``).

1. ``amp``: our MedNeXt-S and -B (k3) vs MONAI's, same weights: one training step (forward with deep
   supervision, CE loss, backward, AdamW) under fp16 autocast with a GradScaler, as the trainer runs
   it on CUDA; median step time, speed-up and ``torch.cuda.max_memory_allocated`` of each.
2. ``memory``: the network's own training-memory estimate (``MedNeXt.training_memory``, what the
   planner asks) vs ``torch.cuda.max_memory_allocated`` of two fp32 steps, S and B at three patch
   shapes incl. a thick-slice topology (``benchmarks/memory_estimate.py``'s cases); goal within 25%.
3. ``predict``: our sliding window (Gaussian, step 0.5) vs MONAI's ``sliding_window_inference`` on a
   volume of Colin27 1 mm's grid (181 x 217 x 181, random values: the data does not travel to the
   GPU machine) with full-width MedNeXt-S, the same module, fp16 autocast; wall time and agreement.

``--dry`` runs all three on the CPU at toy sizes (the tests do this, so the script cannot rot
between the rare sessions that are lent a GPU); its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import memory_estimate  # noqa: E402
from mednext_vs_monai import build_pair, ds_loss  # noqa: E402


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _peak_mb(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None


def _reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def amp_step(variant: str, size: int, batch: int, iters: int, device: str) -> None:
    monai, ours, n_params = build_pair(variant, 3, deep_supervision=True)
    amp = device == "cuda"
    x = torch.randn(batch, 1, size, size, size, device=device)
    target = torch.randint(0, 4, (batch, size, size, size), device=device)
    results = {}
    for name, net in (("MONAI", monai), ("ours", ours)):
        net = net.to(device).train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, eps=1e-4, weight_decay=3e-5)
        scaler = torch.amp.GradScaler(device, enabled=amp)
        _reset_peak(device)
        times = []
        for _ in range(iters + 1):  # the first step pays for cuDNN's algorithm search
            _sync(device)
            start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device, dtype=torch.float16, enabled=amp):
                outputs = net(x)
            loss = ds_loss([o.float() for o in outputs], target)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
            scaler.step(opt)
            scaler.update()
            _sync(device)
            times.append(time.perf_counter() - start)
        results[name] = (statistics.median(times[1:]), _peak_mb(device))
        net.cpu()
    (t_m, m_m), (t_o, m_o) = results["MONAI"], results["ours"]
    mem = "peak memory n/a on the CPU" if m_m is None else \
        f"peak memory {m_m:.0f} -> {m_o:.0f} MB (x{m_o / m_m:.2f})"
    print(f"amp     MedNeXt-{variant} k3 {size}^3 batch {batch} ({n_params:,} params): MONAI {t_m * 1e3:.1f} ms | "
          f"ours {t_o * 1e3:.1f} ms | speed-up x{t_m / t_o:.2f} | {mem}", flush=True)


def memory(variant: str, cases, batch: int, device: str) -> float:
    worst = 0.0
    for name, spacing, patch in cases:  # a fresh process per case: nothing else in its peak
        cmd = [sys.executable, memory_estimate.__file__, "--child", json.dumps([variant, spacing, patch]),
               "--batch", str(batch), "--device", device]
        r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        ratio = r["estimate_mb"] / r["measured_mb"]
        worst = max(worst, abs(ratio - 1))
        print(f"memory  MedNeXt-{variant} {name:28s} measured {r['measured_mb']:8.0f} MB  estimate "
              f"{r['estimate_mb']:8.0f} MB  estimate/measured {ratio:.2f}", flush=True)
    return worst


def predict(shape: tuple[int, ...], patch: int, channels: int, device: str) -> None:
    from monai.inferers import sliding_window_inference

    from mednext_fw.inference.sliding_window import SlidingWindowSettings, sliding_window_predict
    from mednext_fw.network_architectures.registry import build_network

    torch.manual_seed(0)
    net = build_network("mednext", variant="S", in_channels=1, num_classes=2, deep_supervision=False,
                        n_channels=channels).to(device).eval()
    data = torch.randn(1, *shape)
    amp = device == "cuda"
    settings = SlidingWindowSettings(patch_size=[patch] * 3, mirror_axes=())  # fp16 autocast on CUDA
    timings = {}
    with torch.inference_mode():
        for _ in range(2):  # the second round is timed: the first one pays for cuDNN's search
            _sync(device)
            start = time.perf_counter()
            ours = sliding_window_predict(net, data, 2, settings, device)
            _sync(device)
            timings["ours"] = time.perf_counter() - start
            start = time.perf_counter()
            with torch.autocast(device, dtype=torch.float16, enabled=amp):
                theirs = sliding_window_inference(data[None].to(device), [patch] * 3, 1, net, overlap=0.5,
                                                  mode="gaussian", sigma_scale=0.125, progress=False)[0]
            _sync(device)
            timings["monai"] = time.perf_counter() - start
    # the two tile the volume differently (nnU-Net's steps vs MONAI's scan), so an untrained network's
    # labels differ near tile borders: the agreement is a sanity check, not a parity test
    agree = float((ours.argmax(0).cpu() == theirs.argmax(0).cpu()).float().mean())
    print(f"predict volume {tuple(data.shape[1:])} patch {patch}^3 width {channels}: ours {timings['ours']:.2f} s | "
          f"MONAI {timings['monai']:.2f} s | speed-up x{timings['monai'] / timings['ours']:.2f} | "
          f"labels agree on {agree:.1%} of voxels", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry", action="store_true", help="CPU, toy sizes: checks that the script runs")
    p.add_argument("--checks", nargs="+", default=["amp", "memory", "predict"], choices=["amp", "memory", "predict"])
    args = p.parse_args()
    device = "cpu" if args.dry else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device visible (use --dry for the CPU rehearsal)")
    torch.backends.cudnn.benchmark = True
    print(f"gpu_check on {torch.cuda.get_device_name() if device == 'cuda' else 'CPU (dry run)'}, torch {torch.__version__}")
    if "amp" in args.checks:
        for variant in ("S",) if args.dry else ("S", "B"):
            amp_step(variant, 32 if args.dry else 128, 1 if args.dry else 2, 1 if args.dry else 5, device)
    if "memory" in args.checks:
        cases = [("iso 32^3", [1.0] * 3, [32] * 3)] if args.dry else memory_estimate.CASES
        worst = max(memory(v, cases, 1 if args.dry else 2, device) for v in (("S",) if args.dry else ("S", "B")))
        print(f"memory  worst deviation {worst:.0%} (goal: within 25%)", flush=True)
    if "predict" in args.checks:
        predict((40, 48, 36) if args.dry else (181, 217, 181), 32 if args.dry else 128, 4 if args.dry else 32, device)


if __name__ == "__main__":
    main()
