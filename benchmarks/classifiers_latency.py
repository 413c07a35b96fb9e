"""Batch-1 224x224 CPU latency of our 2D classifiers against timm's efficientnet_b0 and levit_128s.

Run in the benchmark venv (timm lives only there):
    /work/main/.venv-bench/bin/python benchmarks/classifiers_latency.py --threads 2 --rounds 5

Protocol: eval mode, torch.no_grad(), ``--threads`` intra-op threads, random weights, 9-class heads.
Every round times each model in turn (``--warmup`` untimed calls, then the median of ``--runs``
calls); the reported figure is the median over rounds with the p10-p90 range of the round medians,
so the models share the same machine load. Ratios are against efficientnet_b0 of the same run.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from mednext_fw.network_architectures.classification.hovit import create_hovit
from mednext_fw.network_architectures.classification.xray_moe import create_xray_moe


def build_models(num_classes: int) -> dict[str, torch.nn.Module]:
    import timm

    torch.manual_seed(0)
    b_all = create_hovit("B", num_classes, gumbel=False).eval()
    b_gumbel = create_hovit("B", num_classes).eval()
    with torch.no_grad():  # pretend training picked block 2 of stage 1 and block 1 of stage 2
        b_gumbel.stage1.gate_logits.copy_(torch.tensor([0.0, 0.1, 2.0, 0.3]))
        b_gumbel.stage2.gate_logits.copy_(torch.tensor([0.0, 1.5, 0.2, 0.1]))
    s = create_hovit("S", num_classes).eval()
    return {
        "efficientnet_b0 (timm)": timm.create_model("efficientnet_b0", num_classes=num_classes).eval(),
        "levit_128s (timm)": timm.create_model("levit_128s", num_classes=num_classes).eval(),
        "HoViT-S 2+2 (eval)": s,
        "HoViT-S 2+2 (fused)": s.fuse(),
        "HoViT-B 4+4 all blocks (eval)": b_all,
        "HoViT-B 4+4 all blocks (fused)": b_all.fuse(),
        "HoViT-B Gumbel 4+4 (eval: 1+1 run)": b_gumbel,
        "HoViT-B pruned 1+1 (prune())": b_gumbel.prune(),
        "X-ray MoE tiny": create_xray_moe(num_classes, width="tiny").eval(),
        "X-ray MoE xxlarge": create_xray_moe(num_classes, width="xxlarge").eval(),
    }


def time_once(model: torch.nn.Module, x: torch.Tensor, warmup: int, runs: int, clock) -> float:
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(runs):
            t0 = clock()
            model(x)
            times.append(clock() - t0)
    return statistics.median(times) * 1e3


def quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--num-classes", type=int, default=9)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu = process CPU time: with --threads 1 it is the latency of an idle core even when "
                         "other jobs share the machine (wall time then measures the scheduler)")
    ap.add_argument("--channels-last", action="store_true", help="channels_last weights and input")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = build_models(args.num_classes)
    x = torch.rand(1, 3, 224, 224)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        models = {k: m.to(memory_format=torch.channels_last) for k, m in models.items()}

    with torch.no_grad():  # numerical agreement of the inference copies with the models they came from
        b_all = models["HoViT-B 4+4 all blocks (eval)"]
        agree = {
            "HoViT-S fused vs eval": (models["HoViT-S 2+2 (fused)"](x) - models["HoViT-S 2+2 (eval)"](x)),
            "HoViT-B fused vs eval": (models["HoViT-B 4+4 all blocks (fused)"](x) - b_all(x)),
            "HoViT-B pruned vs Gumbel eval": (models["HoViT-B pruned 1+1 (prune())"](x)
                                              - models["HoViT-B Gumbel 4+4 (eval: 1+1 run)"](x)),
        }
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    results: dict[str, list[float]] = {k: [] for k in models}
    for r in range(args.rounds):
        for name, model in models.items():
            results[name].append(time_once(model, x, args.warmup, args.runs, clock))
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    ref = statistics.median(results["efficientnet_b0 (timm)"])
    print(f"\ntorch {torch.__version__}, {args.threads} threads, batch 1x3x224x224, "
          f"{args.clock} clock, median of {args.runs} after {args.warmup} warm-ups, {args.rounds} rounds"
          f"{', channels_last' if args.channels_last else ''}")
    print(f"| model | params | ms (median) | p10-p90 | speed-up vs efficientnet_b0 |\n|---|---|---|---|---|")
    for name, ms in results.items():
        med = statistics.median(ms)
        params = sum(p.numel() for p in models[name].parameters())
        print(f"| {name} | {params:,} | {med:.1f} | {quantile(ms, 0.1):.1f}-{quantile(ms, 0.9):.1f} | "
              f"{ref / med:.2f}x |")
    for name, diff in agree.items():
        print(f"max |difference| {name}: {diff.abs().max().item():.2e}")


if __name__ == "__main__":
    main()
