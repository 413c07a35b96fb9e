"""MedNeXt: ours vs MONAI's ``MedNeXt`` (channels-first fp32), same config and parameter count.

Per (variant, kernel) it measures, each case in its own subprocess so peak RSS is per model:
  train: forward (deep supervision, 5 outputs) + DS cross-entropy loss + backward + AdamW step,
         batch 1 at 64^3 (``--train-size``);
  infer: eval forward without grad, no deep supervision, batch 1 at 128^3 (``--infer-size``).
Ours is built with MONAI's weights loaded (``load_monai_state_dict``), so both run the same network;
MONAI's down blocks use the encoder stage's expansion ratio, so for B that is ours with
``down_exp_r`` set (the parameter count is printed and asserted equal). Before timing, outputs
are compared on a small input (max abs difference printed).

``--allocator same`` (default) runs both in this shell's environment: the networks alone.
``--allocator shipped`` runs ours with the allocation settings ``mednext_train`` restarts with (glibc
heap reuse: ``mednext_fw.heap``) and MONAI with the defaults: what each user gets (Linux, glibc).

Examples (2 shared CPU cores, a full run takes long):
  python3 benchmarks/mednext_vs_monai.py --variants S --kernels 3 --modes train
  python3 benchmarks/mednext_vs_monai.py --variants S B --kernels 3 5 --modes train infer --bf16
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

DS_WEIGHTS = [1 / 2**i for i in range(5)]


def build_pair(variant: str, kernel: int, deep_supervision: bool, seed: int = 0):
    from monai.networks.nets.mednext import create_mednext as monai_create

    from mednext_fw.network_architectures.mednext.checkpoint_import import load_monai_state_dict

    torch.manual_seed(seed)
    monai = monai_create(variant, spatial_dims=3, in_channels=1, out_channels=4, kernel_size=kernel,
                         deep_supervision=deep_supervision)
    ours = load_monai_state_dict(monai.state_dict())
    ours.checkpointing = False  # MONAI has no checkpointing; compare like with like
    n_monai = sum(p.numel() for p in monai.parameters())
    n_ours = sum(p.numel() for p in ours.parameters())
    assert n_monai == n_ours, (n_monai, n_ours)
    return monai, ours, n_ours


def _outputs(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


def ds_loss(outputs, target):
    total = 0.0
    norm = sum(DS_WEIGHTS)
    for w, out in zip(DS_WEIGHTS, outputs):
        t = target if out.shape[2:] == target.shape[1:] else F.interpolate(
            target[:, None].float(), size=out.shape[2:], mode="nearest")[:, 0].long()
        total = total + (w / norm) * F.cross_entropy(out, t)
    return total


def run_case(impl: str, variant: str, kernel: int, mode: str, size: int, iters: int, bf16: bool) -> dict:
    monai, ours, n_params = build_pair(variant, kernel, deep_supervision=(mode == "train"))
    net = monai if impl == "monai" else ours
    del monai, ours
    x = torch.randn(1, 1, size, size, size)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    times, cpu = [], []
    if mode == "train":
        net.train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, eps=1e-4, weight_decay=3e-5)
        target = torch.randint(0, 4, (1, size, size, size))
        for _ in range(iters + 1):
            start, cpu_start = time.perf_counter(), time.process_time()
            opt.zero_grad(set_to_none=True)
            with autocast:
                out = _outputs(net(x))
            loss = ds_loss([o.float() for o in out], target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
            opt.step()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
    else:
        net.eval()
        for _ in range(iters + 1):
            start, cpu_start = time.perf_counter(), time.process_time()
            with torch.no_grad(), autocast:
                net(x)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"impl": impl, "variant": variant, "kernel": kernel, "mode": mode, "size": size, "params": n_params,
            "bf16": bf16, "times": times[1:], "median_s": statistics.median(times[1:]),
            "cpu_s": statistics.median(cpu[1:]), "peak_rss_gib": rss_gib}


def agreement(variant: str, kernel: int) -> float:
    monai, ours, _ = build_pair(variant, kernel, deep_supervision=True)
    monai.train()
    ours.train()
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        return max(float((a - b).abs().max()) for a, b in zip(_outputs(monai(x)), _outputs(ours(x))))


def _child(args) -> None:
    torch.set_num_threads(args.threads)
    res = run_case(args.impl, args.variants[0], args.kernels[0], args.modes[0], args.size, args.iters, args.bf16)
    print("RESULT " + json.dumps(res))


def _environment(impl: str, allocator: str) -> dict:
    if allocator == "same":
        return dict(os.environ)
    from mednext_fw.heap import heap_reuse_environ, without_allocator_settings

    plain = without_allocator_settings(os.environ)
    return heap_reuse_environ(plain, "glibc") if impl == "ours" else plain


def _spawn(args, impl: str, variant: str, kernel: int, mode: str, bf16: bool) -> dict:
    size = args.train_size if mode == "train" else args.infer_size
    cmd = [sys.executable, __file__, "--child", "--impl", impl, "--variants", variant, "--kernels", str(kernel),
           "--modes", mode, "--size", str(size), "--iters", str(args.iters), "--threads", str(args.threads)]
    if bf16:
        cmd.append("--bf16")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_environment(impl, args.allocator))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"case {impl} {variant} k{kernel} {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=["S", "B"], choices=["S", "B", "M", "L"])
    p.add_argument("--kernels", nargs="+", type=int, default=[3, 5])
    p.add_argument("--modes", nargs="+", default=["train", "infer"], choices=["train", "infer"])
    p.add_argument("--train-size", type=int, default=64)
    p.add_argument("--infer-size", type=int, default=128)
    p.add_argument("--iters", type=int, default=3, help="timed iterations after one warm-up")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", action="store_true", help="also time ours under CPU bf16 autocast")
    p.add_argument("--allocator", choices=["same", "shipped"], default="same",
                   help="same: both in this environment; shipped: ours with mednext_train's allocation settings")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--impl", default="ours", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=64, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return _child(args)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.iters} timed iters (median), "
          f"allocator settings: {args.allocator}")
    for variant in args.variants:
        for kernel in args.kernels:
            print(f"\n== MedNeXt-{variant} k{kernel}: max |ours - MONAI| at 32^3 (DS outputs) = "
                  f"{agreement(variant, kernel):.2e}")
            for mode in args.modes:
                base = _spawn(args, "monai", variant, kernel, mode, False)
                rows = [("MONAI fp32", base), ("ours fp32", _spawn(args, "ours", variant, kernel, mode, False))]
                if args.bf16:
                    rows.append(("ours bf16", _spawn(args, "ours", variant, kernel, mode, True)))
                for name, r in rows:
                    print(f"{mode:5s} {r['size']}^3 {name:10s} params {r['params']:,}  {r['median_s']:7.2f} s  "
                          f"peak RSS {r['peak_rss_gib']:5.2f} GiB  speed-up x{base['median_s'] / r['median_s']:.2f} (CPU x{base['cpu_s'] / r['cpu_s']:.2f})  "
                          f"memory x{r['peak_rss_gib'] / base['peak_rss_gib']:.2f}")


if __name__ == "__main__":
    main()
