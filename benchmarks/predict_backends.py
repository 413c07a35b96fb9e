"""Prediction backends: torch vs OpenVINO vs ONNX Runtime on a real volume, one run, same model.

Each engine predicts Colin27 1 mm (181 x 217 x 181) with full-width MedNeXt-S (seed-0 weights), patch
128^3, step 0.5, through ``Predictor.predict_array`` (preprocessing, sliding window, TTA, export to the
native grid) with only the network's forward on the chosen runtime; the ONNX export and runtime
compilation are inside the clock (a user pays them once per run). Each engine runs in its own child
process, in a rotating order per repeat. Printed: wall seconds (median [min-max]), the child's peak
RSS, label Dice and max probability difference vs torch, the speed-up over torch, and the load.

    python benchmarks/predict_backends.py --repeats 2                      # no TTA, whole volume
    python benchmarks/predict_backends.py --tta --crop 128 128 128         # 8 flips, one tile's worth
    python benchmarks/predict_backends.py --forward-rounds 4               # forward alone, interleaved

``--forward-rounds N`` times the network's forward alone on one 128^3 tile: N rounds, each engine in
its own process per round (in one process the runtimes' idle worker threads and arenas slowed torch's
next forward by a third), in rotating order so a drift of the shared machine falls on all alike.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_common import (add_model_cache_flag, as_the_cli_runs, dice, input_folder, load,  # noqa: E402
                           make_model_folder, peak_rss_mb, rotations, run_child, run_engines, spread)

ENGINES = ["torch", "openvino", "onnxruntime"]


def child(args) -> None:
    as_the_cli_runs()
    import torch

    torch.set_num_threads(args.threads)
    from mednext_fw.inference import Predictor
    from mednext_fw.inference.backends import wrap_networks
    from mednext_fw.io.image_io import read_images

    data, props = read_images(sorted(Path(args.input).glob("*.nii.gz")))
    predictor = Predictor.from_model_folder(args.model, device="cpu", tta=args.tta)
    predictor.networks = wrap_networks(predictor.networks, args.engine)
    t0 = time.perf_counter()
    seg, probs = predictor.predict_array(data, props)
    wall = time.perf_counter() - t0
    np.savez(args.out, seg=seg, prob=probs[1].astype(np.float32))
    print(json.dumps({"wall_s": wall, **peak_rss_mb()}))


def forward_child(args) -> None:
    """One engine in its own process: set-up + first forward, then two forwards; prints JSON."""
    as_the_cli_runs()
    import torch

    from mednext_fw.inference.backends import wrap_networks
    from mednext_fw.inference.model_folder import ModelFolder, load_networks

    torch.set_num_threads(args.threads)
    net = load_networks(ModelFolder.open(args.model), [0])[0].eval()
    x = torch.randn(1, 1, 128, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        t0 = time.perf_counter()
        engine = wrap_networks([net], args.engine)[0]
        out = engine(x)
        first = time.perf_counter() - t0
        forwards = []
        for _ in range(2):
            t0 = time.perf_counter()
            engine(x)
            forwards.append(time.perf_counter() - t0)
    np.save(args.out, out.numpy())
    print(json.dumps({"first_s": first, "forward_s": min(forwards)}))


def forward_rounds(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_model_folder(tmp / "results", args.channels)
        print(f"# forward rounds {args.forward_rounds}, start: {load()}", flush=True)
        runs: dict[str, list[dict]] = {e: [] for e in args.engines}
        for order in rotations(args.engines, args.forward_rounds):
            for engine in order:
                runs[engine].append(run_child([sys.executable, __file__, "--forward-child", "--engine", engine,
                                               "--model", str(model), "--out", str(tmp / f"{engine}.npy"),
                                               "--threads", str(args.threads)], args.model_cache))
                print(f"  {engine:12s} forward {runs[engine][-1]['forward_s']:.2f} s, first call "
                      f"{runs[engine][-1]['first_s']:.1f} s  ({load()})", flush=True)
        ref = np.load(tmp / "torch.npy") if "torch" in runs else None
        base = np.median([r["forward_s"] for r in runs["torch"]]) if ref is not None else None
        print("\n| engine | forward s (best of 2), median [min-max] | first call s (set-up + forward) | speed-up vs torch | max abs dlogit |")
        print("|---|---|---|---|---|")
        for e, rs in runs.items():
            fwd = [r["forward_s"] for r in rs]
            speed = f"{base / np.median(fwd):.2f}x" if base else "-"
            diff = float(np.abs(np.load(tmp / f"{e}.npy") - ref).max()) if ref is not None else float("nan")
            print(f"| {e} | {spread(fwd)} | {spread([r['first_s'] for r in rs])} | {speed} | {diff:.2e} |")
        print(f"# end: {load()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tta", action="store_true", help="mirroring TTA over the three axes (8 forwards per tile)")
    p.add_argument("--crop", type=int, nargs=3, help="predict a centred crop (z y x voxels) of Colin27")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels", type=int, default=32, help="MedNeXt-S width (32: the real one)")
    p.add_argument("--engines", nargs="+", default=ENGINES, choices=ENGINES)
    p.add_argument("--forward-rounds", type=int, default=0, help="time the forward alone, interleaved (see above)")
    add_model_cache_flag(p)
    p.add_argument("--engine", help=argparse.SUPPRESS)
    p.add_argument("--forward-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.forward_child:
        return forward_child(args)
    if args.engine:
        return child(args)
    if args.forward_rounds:
        return forward_rounds(args)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_model_folder(tmp / "results", args.channels)
        images = input_folder(tmp, args.crop)
        print(f"# {sys.argv[1:]}  start: {load()}", flush=True)
        runs = run_engines(__file__, args, model, images, lambda e: ["--out", str(tmp / f"{e}.npz")])
        ref = np.load(tmp / "torch.npz") if "torch" in runs else None
        print("\n| engine | wall s, median [min-max] | peak RSS MB | speed-up vs torch | Dice vs torch | max abs dp |")
        print("|---|---|---|---|---|---|")
        t_torch = np.median([r["wall_s"] for r in runs.get("torch", [])]) if ref is not None else None
        for engine, rs in runs.items():
            walls = [r["wall_s"] for r in rs]
            got = np.load(tmp / f"{engine}.npz")
            d = dice(got["seg"], ref["seg"]) if ref is not None else float("nan")
            dp = float(np.abs(got["prob"] - ref["prob"]).max()) if ref is not None else float("nan")
            speed = f"{t_torch / np.median(walls):.2f}x" if t_torch else "-"
            print(f"| {engine} | {spread(walls)} | {spread([r['peak_rss_mb'] for r in rs])} | {speed} | {d:.5f} | {dp:.2e} |")
        print(f"# end: {load()}")


if __name__ == "__main__":
    main()
