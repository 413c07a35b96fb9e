"""End to end: the user's ``mednext_predict -m MODEL`` (our network, default CPU backend) vs MONAI's
pipeline (its MedNeXt-S with the same weights + ``sliding_window_inference`` + its resampling back)
and, when installed, nnunetv2's predictor running the MONAI module; ``ours_torch`` is the same
command with ``--backend torch`` (what the default is measured against).

Same volume (Colin27 1 mm, file in -> label file out), same patch (128^3), step 0.5 / overlap 0.5,
Gaussian sigma 1/8, same TTA (all 8 flips or none), same threads. Each engine is its own child
process: wall time of the whole child (imports, reading, preprocessing, prediction, resampling back,
writing), its peak RSS (and that of its export workers), and the label Dice against ours.

    python benchmarks/predict_end_to_end.py --repeats 2                   # .venv: ours vs MONAI
    python benchmarks/predict_end_to_end.py --engines ours ours_torch     # default vs torch backend
    .venv-bench/bin/python benchmarks/predict_end_to_end.py --engines ours monai nnunet
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
from deploy_common import (add_model_cache_flag, dice, input_folder, load, make_model_folder,  # noqa: E402
                           peak_rss_mb, run_engines, spread)

ENGINES = ["ours", "ours_torch", "monai", "nnunet"]
PATCH = (128, 128, 128)


def _ours(args, backend: str = "auto") -> None:
    from mednext_fw.cli.predict import main

    # --overwrite: a repeat writes into the same folder, and a user's re-run would skip finished cases
    argv = ["-m", args.model, "-i", args.input, "-o", args.out_dir, "--overwrite", "--backend", backend]
    assert main(argv + ([] if args.tta else ["--disable-tta"])) == 0


class _Mirrored:
    """MONAI has no mirroring TTA of its own: the 8 flips per tile, as ours and nnU-Net do."""

    def __init__(self, net, tta: bool):
        from mednext_fw.inference.tta import mirror_combinations

        self.net, self.combos = net, mirror_combinations((0, 1, 2) if tta else ())

    def __call__(self, x):
        total = self.net(x)
        for c in self.combos[1:]:
            d = [a + 2 for a in c]
            total += self.net(x.flip(d)).flip(d)
        return total / len(self.combos)


def _monai_net(args):
    import torch
    from monai.networks.nets.mednext import create_mednext

    net = create_mednext("S", spatial_dims=3, in_channels=1, out_channels=2, kernel_size=3)
    net.load_state_dict(torch.load(Path(args.model).parents[1] / "monai_weights.pth"))
    return net.eval()


def _monai(args) -> None:
    import torch
    from monai.inferers import sliding_window_inference
    from monai.transforms import (AsDiscreted, Compose, CropForegroundd, Invertd, LoadImaged, NormalizeIntensityd,
                                  SaveImaged, Spacingd)

    net = _Mirrored(_monai_net(args), args.tta)
    pre = Compose([LoadImaged("image", ensure_channel_first=True, image_only=False),
                   CropForegroundd("image", source_key="image", allow_smaller=True),
                   Spacingd("image", pixdim=(1.0, 1.0, 1.0), mode="bilinear"),
                   NormalizeIntensityd("image")])
    post = Compose([Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False),
                    AsDiscreted("pred", argmax=True),
                    SaveImaged("pred", output_dir=args.out_dir, output_postfix="", separate_folder=False,
                               output_dtype=np.uint8, resample=False, print_log=False)])
    for path in sorted(Path(args.input).glob("*.nii.gz")):
        d = pre({"image": str(path)})
        with torch.inference_mode():
            logits = sliding_window_inference(d["image"][None], PATCH, 1, net, overlap=0.5, mode="gaussian",
                                              sigma_scale=0.125)[0]
            d["pred"] = torch.softmax(logits, 0)
        post(d)


def _nnunet(args) -> None:
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from types import SimpleNamespace

    from mednext_fw.io.image_io import read_images
    from mednext_fw.inference.export import ExportSpec, export_case
    from mednext_fw.inference.model_folder import ModelFolder
    from mednext_fw.preprocessing import preprocess_case

    # nnU-Net's predictor needs its own trained-model folder to run end to end; here it runs the MONAI
    # module through its sliding window (predict_sliding_window_return_logits) between our preprocessing
    # and export, so only the engine differs.
    folder = ModelFolder.open(args.model)
    config = folder.plans.configuration(folder.config_name)
    pred = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=args.tta,
                           perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
    pred.network = _monai_net(args)
    pred.configuration_manager = SimpleNamespace(patch_size=list(PATCH))
    pred.label_manager = SimpleNamespace(num_segmentation_heads=2)
    pred.allowed_mirroring_axes = (0, 1, 2) if args.tta else None
    spec = ExportSpec.from_plans(folder.plans, config, folder.dataset)
    for path in sorted(Path(args.input).glob("*.nii.gz")):
        data, props = read_images([path])
        pre, _, case_props = preprocess_case(data, props, None, folder.plans, config, folder.dataset, "case")
        with torch.inference_mode():
            probs = torch.softmax(pred.predict_sliding_window_return_logits(torch.from_numpy(pre)).float(), 0)
        export_case(probs.numpy(), spec, case_props, Path(args.out_dir) / path.name.replace("_0000", ""), None, None)


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    {"ours": _ours, "ours_torch": lambda a: _ours(a, "torch"), "monai": _monai, "nnunet": _nnunet}[args.engine](args)
    print(json.dumps({"wall_s": time.perf_counter() - t0, **peak_rss_mb()}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tta", action="store_true")
    p.add_argument("--crop", type=int, nargs=3, help="a centred crop (z y x voxels) of Colin27")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--engines", nargs="+", default=["ours", "monai"], choices=ENGINES)
    add_model_cache_flag(p)
    for hidden in ("--engine", "--model", "--input", "--out-dir"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.engine:
        return child(args)
    import SimpleITK as sitk

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_model_folder(tmp / "results")
        images = input_folder(tmp, args.crop)
        print(f"# {sys.argv[1:]}  start: {load()}", flush=True)
        runs = run_engines(__file__, args, model, images, lambda e: ["--out-dir", str(tmp / f"out_{e}")])
        segs = {e: sitk.GetArrayFromImage(sitk.ReadImage(str(next((tmp / f"out_{e}").glob("*.nii.gz")))))
                for e in runs}
        t_ours = np.median([r["process_wall_s"] for r in runs["ours"]]) if "ours" in runs else None
        print("\n| engine | wall s, median [min-max] | peak RSS MB (workers) | ours faster by | label Dice vs ours |")
        print("|---|---|---|---|---|")
        for engine, rs in runs.items():
            walls = [r["process_wall_s"] for r in rs]
            speed = f"{np.median(walls) / t_ours:.2f}x" if t_ours else "-"
            workers = max(r["children_peak_rss_mb"] for r in rs)
            d = dice(segs[engine], segs["ours"]) if "ours" in segs else float("nan")
            print(f"| {engine} | {spread(walls)} | {spread([r['peak_rss_mb'] for r in rs])} ({workers:.0f}) | {speed} | "
                  f"{d:.4f} |")
        print(f"# end: {load()}")


if __name__ == "__main__":
    main()
