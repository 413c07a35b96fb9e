"""Sliding-window inference: mednext_fw vs MONAI ``sliding_window_inference`` vs nnU-Net v2's predictor.

The same module (our MedNeXt-S from the registry, random weights, eval) on the same volume and
patch, with and without mirroring TTA over all three axes. Each engine runs in its own child
process so peak RSS is its own; the parent prints wall time of the sliding-window call, peak RSS
(whole process, and above the level before the call) and the max abs difference of the softmax
probabilities against ours.

Run with the benchmark venv (nnunetv2 + monai installed):
    /work/main/.venv-bench/bin/python benchmarks/sliding_window_vs_peers.py --volume colin --patch 128 --channels 8
    /work/main/.venv-bench/bin/python benchmarks/sliding_window_vs_peers.py --volume big --channels 4 --no-tta
``--thp all`` starts every engine with torch's huge-page allocations (our commands' default).
``--channels`` shrinks MedNeXt-S's width (32) so the CPU run finishes; ``--crop`` predicts a sub-block.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COLIN = REPO.parent / "shared" / "data" / "Dataset001_BrainMask" / "imagesTr" / "colin27_1mm_0000.nii.gz"
ENGINES = ("ours", "monai", "nnunet", "nnunet_fp32")


def load_volume(kind: str, crop: list[int] | None) -> np.ndarray:
    if kind == "colin":
        import SimpleITK as sitk

        arr = sitk.GetArrayFromImage(sitk.ReadImage(str(COLIN))).astype(np.float32)  # 181 x 217 x 181
    else:  # a 512 x 512 x 300 CT-sized array: smooth random structure, deterministic
        rng = np.random.default_rng(0)
        arr = rng.standard_normal((300, 512, 512), dtype=np.float32)
    if crop:
        arr = arr[tuple(slice(0, c) for c in crop)]
    arr = (arr - arr.mean()) / (arr.std() + 1e-8)
    return np.ascontiguousarray(arr[None])


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def run_engine(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from mednext_fw.network_architectures.registry import build_network

    torch.manual_seed(0)
    net = build_network("mednext", variant="S", in_channels=1, num_classes=2, deep_supervision=False,
                        n_channels=args.channels).eval()
    data = torch.from_numpy(load_volume(args.volume, args.crop))
    patch = [args.patch] * 3
    axes = (0, 1, 2) if args.tta else ()
    # Imports and setup happen before the clock and the memory baseline, so only the call counts.
    if args.engine == "ours":
        from mednext_fw.inference.predictor import probabilities_inplace
        from mednext_fw.inference.sliding_window import SlidingWindowSettings, sliding_window_predict

        s = SlidingWindowSettings(patch_size=patch, mirror_axes=axes, batch_size=args.batch)
    elif args.engine == "monai":
        from monai.inferers import sliding_window_inference

        model = _Mirrored(net, axes)
    else:
        if args.engine == "nnunet_fp32":
            _nnunet_fp32_accumulators()
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        pred = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=bool(axes),
                               perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
        pred.network = net
        pred.configuration_manager = SimpleNamespace(patch_size=patch)
        pred.label_manager = SimpleNamespace(num_segmentation_heads=2)
        pred.allowed_mirroring_axes = axes
    base = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        if args.engine == "ours":
            probs = probabilities_inplace(sliding_window_predict(net, data, 2, s, "cpu"), regions=False)
        elif args.engine == "monai":
            logits = sliding_window_inference(data[None], patch, 1, model, overlap=0.5, mode="gaussian",
                                              sigma_scale=0.125, progress=False)[0]
            probs = torch.softmax(logits, 0)
        else:
            probs = torch.softmax(pred.predict_sliding_window_return_logits(data).float(), 0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.save(args.out, probs.numpy().astype(np.float32) if args.volume == "colin" else probs.numpy().astype(np.float16))
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak, "base_rss_mb": base}))


def _nnunet_fp32_accumulators() -> None:
    """nnU-Net's algorithm with its fp16 Gaussian and accumulators switched to fp32.

    Stock nnU-Net keeps the Gaussian (peak 10) and the sums in fp16; near tile corners the weights
    (~1e-10 of the peak) underflow to the fp16 subnormal minimum, so logits there carry errors of
    several percent. This variant isolates the algorithm from that rounding for the agreement check.
    """
    import functools

    import torch
    import nnunetv2.inference.predict_from_raw_data as mod

    class _Torch32:
        half = torch.float32

        def __getattr__(self, name):
            return getattr(torch, name)

    mod.torch = _Torch32()
    mod.compute_gaussian = functools.partial(mod.compute_gaussian, dtype=torch.float32)


class _Mirrored:
    """Per-tile mirroring TTA for MONAI (which has none built in), same flips as the others."""

    def __init__(self, net, axes):
        from mednext_fw.inference.tta import mirror_combinations

        self.net, self.combos = net, mirror_combinations(axes)

    def __call__(self, x):
        total = self.net(x).float()
        for c in self.combos[1:]:
            d = [a + 2 for a in c]
            total += self.net(x.flip(d)).float().flip(d)
        return total / len(self.combos)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--volume", choices=["colin", "big"], default="colin")
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--channels", type=int, default=32, help="MedNeXt-S width (32 is the real S)")
    p.add_argument("--crop", type=int, nargs=3, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1, help="our tiles per forward")
    p.add_argument("--no-tta", dest="tta_modes", action="store_const", const=[False], default=[False, True])
    p.add_argument("--tta-only", dest="tta_modes", action="store_const", const=[True])
    p.add_argument("--thp", choices=["none", "ours", "all"], default="none",
                   help="engines started with THP_MEM_ALLOC_ENABLE=1 (torch's huge-page allocations)")
    p.add_argument("--engines", nargs="+", default=["ours", "monai", "nnunet"], choices=ENGINES)
    p.add_argument("--engine", help=argparse.SUPPRESS)
    p.add_argument("--tta", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.engine:
        return run_engine(args)
    tmp = Path(tempfile.mkdtemp(prefix="swbench_"))
    common = ["--volume", args.volume, "--patch", str(args.patch), "--channels", str(args.channels),
              "--threads", str(args.threads), "--batch", str(args.batch)] + \
             (["--crop", *map(str, args.crop)] if args.crop else [])
    print(f"volume={args.volume} crop={args.crop} patch={args.patch} channels={args.channels} "
          f"threads={args.threads} thp={args.thp} python={sys.executable}")
    for tta in args.tta_modes:
        res = {}
        for eng in args.engines:
            out = tmp / f"{eng}_{tta}.npy"
            cmd = [sys.executable, __file__, "--engine", eng, "--out", str(out)] + common + (["--tta"] if tta else [])
            env = dict(os.environ)
            if args.thp == "all" or (args.thp == "ours" and eng == "ours"):
                env["THP_MEM_ALLOC_ENABLE"] = "1"  # read by torch once, at its first allocation
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
            if r.returncode != 0:
                sys.exit(f"{eng} failed:\n{r.stderr[-3000:]}")
            res[eng] = json.loads(r.stdout.strip().splitlines()[-1])
        ref = np.load(tmp / f"ours_{tta}.npy", mmap_mode="r") if "ours" in res else None
        print(f"\nTTA={'on (8 flips)' if tta else 'off'}")
        print(f"{'engine':11s} {'wall s':>8s} {'CPU s':>8s} {'peak RSS MB':>12s} {'above base MB':>14s} "
              f"{'max|dp| vs ours':>16s}")
        for eng, r in res.items():
            diff = float(np.abs(np.load(tmp / f"{eng}_{tta}.npy", mmap_mode="r").astype(np.float32) - ref).max()) \
                if ref is not None else float("nan")
            print(f"{eng:11s} {r['wall_s']:8.1f} {r.get('cpu_s', float('nan')):8.1f} {r['peak_rss_mb']:12.0f} "
                  f"{r['peak_rss_mb'] - r['base_rss_mb']:14.0f} {diff:16.2e}")
        if "ours" in res:
            for eng in res:
                if eng != "ours":
                    print(f"speed-up vs {eng}: wall {res[eng]['wall_s'] / res['ours']['wall_s']:.2f}x, "
                          f"CPU {res[eng].get('cpu_s', float('nan')) / res['ours'].get('cpu_s', float('nan')):.2f}x, "
                          f"peak-RSS ratio ours/{eng}: {res['ours']['peak_rss_mb'] / res[eng]['peak_rss_mb']:.2f}")
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
