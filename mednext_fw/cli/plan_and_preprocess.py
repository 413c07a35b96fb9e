"""``mednext_plan_and_preprocess``: integrity check -> fingerprint -> plans -> preprocessed arrays."""
from __future__ import annotations

import argparse
import sys

from mednext_fw import paths
from mednext_fw.cli.common import run_command
from mednext_fw.cli.hardware import add_device_flag, add_threads_flag, check_counts
from mednext_fw.devices import use_threads
from mednext_fw.durations import parse_duration
from mednext_fw.errors import UsageError
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.lookup import find_dataset
from mednext_fw.preprocessing.run import CONFIGS, PreprocessOptions, plan_and_preprocess


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mednext_plan_and_preprocess", description=__doc__)
    p.add_argument("-d", "--dataset", nargs="+", required=True, help="dataset id or name, e.g. 17, BTCV")
    p.add_argument("-c", "--configurations", nargs="+", default=list(CONFIGS), choices=CONFIGS,
                   help="configurations to preprocess (all are planned)")
    p.add_argument("-np", "--num-processes", "--num-workers", dest="num_processes", type=int, default=None,
                   help="worker processes (default: the usable cores, at most 4)")
    add_threads_flag(p)
    p.add_argument("--no-verify", action="store_true", help="skip the dataset integrity check")
    p.add_argument("--no-pp", action="store_true", help="plan only, do not preprocess")
    p.add_argument("--clean", action="store_true",
                   help="recompute fingerprint and plans and redo every case (a splits_final.json is kept)")
    p.add_argument("--spacing", nargs=3, type=float, metavar=("X", "Y", "Z"),
                   help="target spacing in mm (x y z, as image viewers show it), e.g. 1 1 1")
    add_device_flag(p)
    p.add_argument("--gpu-memory-gb", type=float, default=None,
                   help="plan for a GPU with this much memory (default: the detected GPU's free memory minus 10%% "
                        "of the card, at least 1 GiB; without a GPU the plan is made for the CPU)")
    p.add_argument("--time-budget", metavar="DURATION",
                   help="the training time you have (e.g. 20m, 12h): recorded in the plans for mednext_train, and "
                        "on a CPU it sets the step-time target of the plan")
    p.add_argument("-m", "--model", choices=["S", "B", "M", "L"], help="force the MedNeXt variant")
    p.add_argument("-k", "--kernel-size", type=int, choices=[3, 5], help="force the MedNeXt kernel size")
    p.add_argument("--lowres", action="store_true",
                   help="plan 3d_lowres and the 3d_cascade_fullres even when the full-resolution patch covers "
                        "the image (the lowres spacing then halves the median image's voxels)")
    p.add_argument("--input-size", type=int, help="classification datasets: square input side (multiple of 16) "
                                                   "instead of the planned one")
    return p


def _validate(args: argparse.Namespace) -> None:
    check_counts(args)
    args.time_budget_s = parse_duration(args.time_budget) if args.time_budget else None
    if args.num_processes is None:
        from mednext_fw.devices import usable_cores

        args.num_processes = min(4, usable_cores())
    if args.num_processes < 1:
        raise UsageError(f"-np must be >= 1, got {args.num_processes}")
    if args.spacing and min(args.spacing) <= 0:
        raise UsageError(f"--spacing must be positive, got {args.spacing}")
    if args.gpu_memory_gb is not None and args.gpu_memory_gb <= 1:
        raise UsageError(f"--gpu-memory-gb must be > 1, got {args.gpu_memory_gb}")


def _options(args: argparse.Namespace) -> PreprocessOptions:
    return PreprocessOptions(configurations=list(args.configurations), num_processes=args.num_processes,
                             verify=not args.no_verify, preprocess=not args.no_pp, clean=args.clean,
                             spacing_zyx=args.spacing[::-1] if args.spacing else None,
                             gpu_memory_gb=args.gpu_memory_gb, variant=args.model, kernel_size=args.kernel_size,
                             device=args.device, time_budget=args.time_budget,
                             force_lowres=args.lowres)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("mednext_plan_and_preprocess", lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    _validate(args)
    use_threads("cpu", args.threads, workers=0)
    names = [find_dataset(d) for d in args.dataset]
    for name in names:
        task = DatasetJson.load(paths.raw_root() / name / "dataset.json").task
        if task == "segmentation":
            plan_and_preprocess(name, _options(args))
        elif task == "classification":
            from mednext_fw.preprocessing.classification_run import plan_and_preprocess_classification

            plan_and_preprocess_classification(name, input_size=args.input_size, num_workers=args.num_processes,
                                               replan=args.clean, preprocess=not args.no_pp)
        else:
            raise UsageError(f"{name}: task '{task}' in dataset.json is not supported by this command")


if __name__ == "__main__":
    sys.exit(main())
