"""``mednext_plan_and_preprocess``: integrity check -> fingerprint -> plans -> preprocessed arrays."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from mednext_fw import paths
from mednext_fw.io.dataset_json import DatasetJson, DatasetJsonError
from mednext_fw.io.image_io import ImageReadError
from mednext_fw.io.integrity import IntegrityError, verify_dataset
from mednext_fw.io.lookup import DatasetNotFoundError, find_dataset
from mednext_fw.planners.fingerprint import Fingerprint, extract_fingerprint
from mednext_fw.cli.hardware import FlagError, add_device_flag, add_threads_flag, check_counts, use_threads
from mednext_fw.devices import DeviceError
from mednext_fw.durations import DurationError, parse_duration
from mednext_fw.io.labels import num_outputs
from mednext_fw.planners.device_budget import detect_budget, fit_plans_to_cpu
from mednext_fw.planners.planner import PlannerOptions, plan_experiment
from mednext_fw.planners.plans import Plans, PlansError
from mednext_fw.planners.splits import SplitsError, ensure_splits
from mednext_fw.planners.classification import ClassificationDataError
from mednext_fw.preprocessing.parallel import WorkerDiedError
from mednext_fw.preprocessing.preprocessor import (copy_gt_segmentations, prepare_config_folder,
                                                   preprocess_configuration)

CONFIGS = ("2d", "3d_fullres", "3d_lowres")
USER_ERRORS = (paths.PathNotSetError, DatasetNotFoundError, IntegrityError, DatasetJsonError, ImageReadError,
               PlansError, SplitsError, WorkerDiedError, ClassificationDataError, DeviceError, DurationError,
               FlagError)


class UsageError(ValueError):
    pass


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


def _log(msg: str) -> None:
    print(msg, flush=True)


def _plans(name: str, raw_dir: Path, out: Path, dataset: DatasetJson, args) -> Plans:
    fp_path, plans_path = out / "fingerprint.json", out / "plans.json"
    fp = Fingerprint.load(fp_path) if fp_path.is_file() else None
    if fp is None:
        fp = extract_fingerprint(raw_dir, dataset, args.num_processes)
        fp.save(fp_path)
        _log(f"wrote {fp_path}")
    overrides = (args.spacing or args.model or args.kernel_size or args.gpu_memory_gb is not None or args.time_budget
                 or args.device != "auto" or args.lowres)
    if plans_path.is_file() and not overrides:
        _log(f"using the existing {plans_path} (edit it, or pass --clean / planning flags to re-plan)")
        return Plans.load(plans_path)
    budget_s = args.time_budget_s
    device = detect_budget(args.device, args.gpu_memory_gb, budget_s)
    opts = PlannerOptions(gpu_memory_gb=device.memory_gb, variant=args.model, kernel_size=args.kernel_size,
                          spacing=args.spacing[::-1] if args.spacing else None, notes=list(device.notes),
                          force_lowres=args.lowres)
    plans = plan_experiment(name, fp, dataset, opts)
    if device.device == "cpu":
        fit_plans_to_cpu(plans, fp, device, dataset.num_channels, num_outputs(dataset), args.model,
                         keep_lowres=args.lowres)
    if budget_s:
        for config in plans.configurations.values():
            config.extra["time_budget"] = args.time_budget
    if plans_path.is_file():  # keep configurations a user added by hand
        for k, v in Plans.load(plans_path).configurations.items():
            plans.configurations.setdefault(k, v)
    plans.save(plans_path)
    _log(f"wrote {plans_path}")
    for note in plans.planner_notes:
        _log(f"  {note}")
    return plans


def run_segmentation(dataset_name: str, args: argparse.Namespace) -> None:
    raw_dir = paths.raw_root() / dataset_name
    dataset = DatasetJson.load(raw_dir / "dataset.json") if args.no_verify else \
        verify_dataset(raw_dir, args.num_processes)
    out = paths.preprocessed_root() / dataset_name
    if args.clean and out.is_dir():
        for p in out.iterdir():
            if p.name != "splits_final.json":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    dataset.save(out / "dataset.json")
    plans = _plans(dataset_name, raw_dir, out, dataset, args)
    if len(Fingerprint.load(out / "fingerprint.json").case_ids) >= 2:
        _, msg = ensure_splits(out / "splits_final.json", Fingerprint.load(out / "fingerprint.json").case_ids)
        _log(msg)
    else:
        _log("only 1 training case: no cross-validation splits written (train with fold 'all')")
    if args.no_pp:
        return
    copy_gt_segmentations(raw_dir, out, dataset)
    for name in args.configurations:
        if name not in plans.configurations:
            _log(f"{name}: not in the plans (not needed for this dataset), skipped")
            continue
        config = plans.configurations[name]
        wiped = prepare_config_folder(out / config.data_identifier, plans, config)
        if wiped:
            _log(wiped)
        done_now, skipped = preprocess_configuration(raw_dir, out, plans, config, dataset, args.num_processes)
        _log(f"{name}: {done_now} case(s) preprocessed, {skipped} already done -> {out / config.data_identifier}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _validate(args)
        use_threads("cpu", args.threads, workers=0)
        names = [find_dataset(d) for d in args.dataset]
        for name in names:
            task = DatasetJson.load(paths.raw_root() / name / "dataset.json").task
            if task == "segmentation":
                run_segmentation(name, args)
            elif task == "classification":
                from mednext_fw.cli.classification import plan_and_preprocess_classification

                plan_and_preprocess_classification(name, input_size=args.input_size, num_workers=args.num_processes,
                                                   replan=args.clean, preprocess=not args.no_pp)
            else:
                raise UsageError(f"{name}: task '{task}' in dataset.json is not supported by this command")
    except (UsageError, *USER_ERRORS) as exc:
        print(f"mednext_plan_and_preprocess: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
