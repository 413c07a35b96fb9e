"""One CPU kernel choice of our MedNeXt training step, A against B, in alternating steps of one process.

Separate processes per setting drifted more between runs (the shared machine's speed moves 10-20%
within minutes) than the choices differ; alternating steps in one process, with the order reversed
every round, puts any drift on both. Prints each setting's median step and the per-round ratio.

  --compare slabs      depthwise weight-gradient kernel slabs of 8 MB (before) vs 1 MB (now)
  --compare pointwise  1x1 convs as MKL GEMMs (F.linear, before) vs oneDNN 1x1 convs (now)

Run it with the training commands' allocator settings, as users get them (mednext_fw.heap):
  GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:glibc.malloc.hugetlb=1 \\
  THP_MEM_ALLOC_ENABLE=0 python3 benchmarks/training_step_ab.py --compare pointwise --variant S --rounds 8
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mednext_vs_monai import ds_loss  # noqa: E402

from mednext_fw.network_architectures.mednext import create_mednext, fast, pointwise  # noqa: E402


def settings(compare: str) -> dict:
    """name -> a function that puts the module into that setting."""
    if compare == "slabs":
        return {"8 MB slabs": lambda: setattr(fast, "_CHUNK_BYTES", 8 * 2**20),
                "1 MB slabs": lambda: setattr(fast, "_CHUNK_BYTES", 1 * 2**20)}
    onednn = pointwise._cpu_kernels
    return {"MKL GEMM": lambda: setattr(pointwise, "_cpu_kernels", lambda x: False),
            "oneDNN 1x1 conv": lambda: setattr(pointwise, "_cpu_kernels", onednn)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--compare", choices=["slabs", "pointwise"], required=True)
    p.add_argument("--variant", default="S", choices=["S", "B"])
    p.add_argument("--width", type=int, default=32, help="first-level channels (32: the variant's; the CPU plans use 8-16)")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = create_mednext(args.variant, 1, 4, kernel_size=3, deep_supervision=True, n_channels=args.width,
                         checkpointing=False)
    x = torch.randn(args.batch, 1, *(args.size,) * 3)
    target = torch.randint(0, 4, (args.batch, *(args.size,) * 3))
    opt = torch.optim.AdamW(net.train().parameters(), lr=1e-3, eps=1e-4, weight_decay=3e-5)

    def step() -> float:
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = ds_loss([o.float() for o in net(x)], target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
        opt.step()
        return time.perf_counter() - start

    options = settings(args.compare)
    names = list(options)
    for name in names:  # warm-up: allocations and kernel choices of both settings
        options[name]()
        step()
    times = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            options[name]()
            times[name].append(step())
    print(f"MedNeXt-{args.variant} k3 width {args.width}, batch {args.batch}, {args.size}^3, {args.rounds} rounds, "
          f"{args.threads} threads")
    for name in names:
        t = times[name]
        print(f"  {name:16s} median {statistics.median(t):.3f} s  [{min(t):.3f}-{max(t):.3f}]")
    ratios = [a / b for a, b in zip(*times.values())]
    print(f"  {names[0]} / {names[1]} per round: " + " ".join(f"{v:.2f}" for v in ratios)
          + f"  (median {statistics.median(ratios):.2f})")


if __name__ == "__main__":
    main()
