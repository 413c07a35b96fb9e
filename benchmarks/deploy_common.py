"""Shared by predict_backends.py and predict_end_to_end.py (and cpu_bounds.py): the benchmark model
folder, child runs, and the process set-up of the commands.

The model is MedNeXt-S at full width (32 channels) with seed-0 weights taken from MONAI's MedNeXt-S
(so the MONAI peer runs the very same weights), planned at 1 mm with a 128^3 patch, saved in the
trainer's model-folder layout with Dataset001's dataset.json. Every engine runs in its own child
process (peak RSS is its own); children are started in a rotating order per repeat so the load of the
shared machine falls on all of them alike.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "Dataset001_BrainMask"
COLIN = DATA / "imagesTr" / "colin27_1mm_0000.nii.gz"


def as_the_cli_runs() -> None:
    """Set up the process as every ``mednext_*`` command does before torch allocates anything
    (transparent huge pages for torch's tensors, passive OpenMP waits). Without it torch's forward
    paid page faults the user's ``mednext_predict`` does not: 8.0 vs 5.0 s per 128^3 tile here."""
    import mednext_fw.cli  # noqa: F401 - imported for its process set-up


def make_model_folder(root: Path, channels: int = 32, patch: int = 128, spacing: float = 1.0) -> Path:
    import torch
    from monai.networks.nets.mednext import create_mednext as monai_create

    from mednext_fw.network_architectures.mednext.checkpoint_import import load_monai_state_dict
    from mednext_fw.network_architectures.registry import build_network
    from mednext_fw.planners.plans import Configuration, NetworkPlan, Plans

    folder = root / DATA.name / "MedNeXtTrainer__3d_fullres"
    (folder / "fold_0").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    monai = monai_create("S", spatial_dims=3, in_channels=1, out_channels=2, kernel_size=3, deep_supervision=False)
    if channels != 32:
        from monai.networks.nets import MedNeXt
        monai = MedNeXt(spatial_dims=3, init_filters=channels, in_channels=1, out_channels=2,
                        encoder_expansion_ratio=2, decoder_expansion_ratio=2, bottleneck_expansion_ratio=2,
                        kernel_size=3, blocks_down=(2, 2, 2, 2), blocks_bottleneck=2, blocks_up=(2, 2, 2, 2),
                        use_residual_connection=True)
    kwargs = {"variant": "S", "in_channels": 1, "num_classes": 2, "kernel_size": 3, "n_channels": channels,
              "deep_supervision": False}
    ours = build_network("mednext", **kwargs)
    ours.load_state_dict(load_monai_state_dict(monai.state_dict()).state_dict())
    torch.save({"network_builder": {"name": "mednext", "kwargs": kwargs}, "network_state": ours.state_dict(),
                "epoch": 0, "trainer_name": "MedNeXtTrainer", "config_name": "3d_fullres"},
               folder / "fold_0" / "checkpoint_final.pth")
    torch.save(monai.state_dict(), root / "monai_weights.pth")
    config = Configuration(name="3d_fullres", dim=3, spacing=[spacing] * 3, patch_size=[patch] * 3, batch_size=2,
                           median_image_size=[181, 217, 181], normalization=["zscore"], use_mask_for_norm=[False],
                           network=NetworkPlan(name="mednext", variant="S", kwargs={"n_channels": channels}),
                           data_identifier="bench", mirror_axes=[0, 1, 2])
    Plans(dataset_name=DATA.name, transpose_forward=[0, 1, 2], transpose_backward=[0, 1, 2],
          configurations={"3d_fullres": config}).save(folder / "plans.json")
    shutil.copy(DATA / "dataset.json", folder / "dataset.json")
    return folder


def input_folder(root: Path, crop: list[int] | None) -> Path:
    """A folder with Colin27 1 mm (cropped to ``crop`` voxels z, y, x from the centre when given)."""
    import SimpleITK as sitk

    d = root / ("input" if not crop else "input_" + "x".join(map(str, crop)))
    d.mkdir(exist_ok=True)
    target = d / "colin27_1mm_0000.nii.gz"
    if not target.exists():
        img = sitk.ReadImage(str(COLIN))
        if crop:
            size = list(img.GetSize())  # x, y, z
            want = list(reversed(crop))
            start = [(s - w) // 2 for s, w in zip(size, want)]
            img = sitk.RegionOfInterest(img, want, start)
        sitk.WriteImage(img, str(target))
    return d


def add_model_cache_flag(parser) -> None:
    parser.add_argument("--model-cache", metavar="DIR",
                        help="OpenVINO's model cache for the children (MEDNEXT_cache); default: a new empty one "
                             "per child, i.e. a first run's set-up. Run twice with the same DIR for a warm cache")


def run_child(argv: list[str], model_cache: str | None = None) -> dict:
    """Run ``argv`` with OpenVINO's model cache at ``model_cache`` (None: a new empty one); return its
    last JSON line (the child reports its own peak RSS) plus the wall time."""
    with tempfile.TemporaryDirectory() as fresh:
        env = {**os.environ, "MEDNEXT_cache": model_cache or fresh}
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    result["process_wall_s"] = wall
    return result


def run_engines(script: str, args, model: Path, images: Path, out_for) -> dict[str, list[dict]]:
    """Every engine of ``args.engines`` ``args.repeats`` times in rotating order, each in a child running
    ``script --engine E``; ``out_for(engine)`` gives the child's output flag and path."""
    runs: dict[str, list[dict]] = {e: [] for e in args.engines}
    for order in rotations(args.engines, args.repeats):
        for engine in order:
            argv = [sys.executable, script, "--engine", engine, "--model", str(model), "--input", str(images),
                    *out_for(engine), "--threads", str(args.threads)] + (["--tta"] if args.tta else [])
            r = run_child(argv, args.model_cache)
            r["load"] = load()
            runs[engine].append(r)
            print(f"  {engine:12s} {r['wall_s']:8.1f} s in the call, {r['process_wall_s']:8.1f} s in all; peak RSS "
                  f"{r['peak_rss_mb']:7.0f} MB (children {r['children_peak_rss_mb']:.0f} MB)  ({r['load']})", flush=True)
    return runs


def peak_rss_mb() -> dict:
    """This process's peak RSS and the largest of its finished children's (export workers)."""
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def load() -> str:
    return "load average " + " / ".join(f"{v:.1f}" for v in os.getloadavg())


def rotations(engines: list[str], repeats: int) -> list[list[str]]:
    return [engines[r % len(engines):] + engines[:r % len(engines)] for r in range(repeats)]


def spread(values: list[float]) -> str:
    import statistics

    values = sorted(values)
    mid = statistics.median(values)
    return f"{mid:.1f} [{values[0]:.1f}-{values[-1]:.1f}]" if len(values) > 1 else f"{mid:.1f}"


def dice(a, b, label: int = 1) -> float:
    x, y = a == label, b == label
    denom = int(x.sum()) + int(y.sum())
    return 1.0 if denom == 0 else 2.0 * int((x & y).sum()) / denom


if __name__ == "__main__":
    sys.exit("a helper module; run predict_backends.py or predict_end_to_end.py")
