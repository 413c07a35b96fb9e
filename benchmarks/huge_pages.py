"""CPU allocation settings of our console scripts vs the defaults: MedNeXt-S inference forward at
128^3 and a training step at 64^3 (batch 2), under three settings:
  default: torch's and glibc's defaults (what a plain ``import torch`` gets);
  thp:     torch's huge-page allocations (``THP_MEM_ALLOC_ENABLE=1``, all our commands);
  heap:    glibc keeping freed memory for reuse, on its own huge pages (``mednext_fw.heap``: what the
           training commands restart with).

Each setting runs in its own child process (torch and glibc read their settings once, at start); the
parent prints wall time, system time, minor page faults and peak RSS per setting, and the ratios.
    python3 benchmarks/huge_pages.py --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def child(mode: str, repeats: int, width: int) -> None:
    import torch

    from mednext_fw.network_architectures.registry import build_network

    torch.manual_seed(0)
    torch.set_num_threads(2)
    train = mode == "train"
    net = build_network("mednext", variant="S", in_channels=1, num_classes=4, deep_supervision=train,
                        n_channels=width)
    size, batch = (64, 2) if train else (128, 1)
    x = torch.randn(batch, 1, size, size, size)
    target = torch.randint(0, 4, (batch, size, size, size))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net.train(train)

    def step():
        if train:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x)[0], target).backward()
            opt.step()
        else:
            with torch.inference_mode():
                net(x)

    step()  # warm-up: first-call allocations and oneDNN primitive creation
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(repeats):
        step()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": (time.perf_counter() - t0) / repeats, "sys_s": (r1.ru_stime - r0.ru_stime) / repeats,
                      "faults": (r1.ru_minflt - r0.ru_minflt) / repeats, "peak_rss_mb": r1.ru_maxrss / 1024}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--width", type=int, default=32, help="MedNeXt-S channels (32 is the real S)")
    p.add_argument("--child", choices=["infer", "train"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child, args.repeats, args.width)
    print(f"MedNeXt-S width {args.width}, 2 threads, {args.repeats} timed repeats after one warm-up")
    from mednext_fw.heap import heap_reuse_environ, without_allocator_settings

    base = without_allocator_settings(os.environ)
    settings = {"default": dict(base, THP_MEM_ALLOC_ENABLE="0"), "thp": dict(base, THP_MEM_ALLOC_ENABLE="1"),
                "heap": heap_reuse_environ(base, "glibc")}
    for mode in ("infer", "train"):
        res = {}
        for name, env in settings.items():
            cmd = [sys.executable, __file__, "--child", mode, "--repeats", str(args.repeats), "--width", str(args.width)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            res[name] = r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{mode:5s} {name:7s}: {r['wall_s']:6.2f} s  sys {r['sys_s']:5.2f} s  faults {r['faults']:9.0f}  "
                  f"peak RSS {r['peak_rss_mb']:6.0f} MB")
        for a, b in (("default", "thp"), ("thp", "heap")):
            print(f"{mode:5s} {b} vs {a}: {res[a]['wall_s'] / res[b]['wall_s']:.2f}x faster, "
                  f"peak RSS x{res[b]['peak_rss_mb'] / res[a]['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
