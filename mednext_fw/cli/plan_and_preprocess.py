"""``mednext_plan_and_preprocess``: integrity check -> fingerprint -> plans -> preprocessed arrays."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mednext_fw import paths
from mednext_fw.cli.common import run_command
from mednext_fw.errors import UsageError
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.integrity import verify_dataset
from mednext_fw.io.lookup import find_dataset
from mednext_fw.planners.fingerprint import Fingerprint, extract_fingerprint
from mednext_fw.planners.planner import PlannerOptions, plan_experiment
from mednext_fw.planners.plans import Plans
from mednext_fw.planners.splits import ensure_splits
from mednext_fw.preprocessing.folder import PreprocessedFolder
from mednext_fw.preprocessing.preprocessor import copy_gt_segmentations, preprocess_configuration

CONFIGS = ("2d", "3d_fullres", "3d_lowres")

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mednext_plan_and_preprocess", description=__doc__)
    p.add_argument("-d", "--dataset", nargs="+", required=True, help="dataset id or name, e.g. 17, BTCV")
    p.add_argument("-c", "--configurations", nargs="+", default=list(CONFIGS), choices=CONFIGS,
                   help="configurations to preprocess (all are planned)")
    p.add_argument("-np", "--num-processes", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--no-verify", action="store_true", help="skip the dataset integrity check")
    p.add_argument("--no-pp", action="store_true", help="plan only, do not preprocess")
    p.add_argument("--clean", action="store_true",
                   help="recompute fingerprint and plans and redo every case (a splits_final.json is kept)")
    p.add_argument("--spacing", nargs=3, type=float, metavar=("X", "Y", "Z"),
                   help="target spacing in mm (x y z, as image viewers show it), e.g. 1 1 1")
    p.add_argument("--gpu-memory-gb", type=float, default=None, help="training GPU memory budget (default 8)")
    p.add_argument("-m", "--model", choices=["S", "B", "M", "L"], help="force the MedNeXt variant")
    p.add_argument("-k", "--kernel-size", type=int, choices=[3, 5], help="force the MedNeXt kernel size")
    p.add_argument("--input-size", type=int, help="classification datasets: square input side (multiple of 16) "
                                                   "instead of the planned one")
    return p


def _validate(args: argparse.Namespace) -> None:
    if args.num_processes < 1:
        raise UsageError(f"-np must be >= 1, got {args.num_processes}")
    if args.spacing and min(args.spacing) <= 0:
        raise UsageError(f"--spacing must be positive, got {args.spacing}")
    if args.gpu_memory_gb is not None and args.gpu_memory_gb <= 1:
        raise UsageError(f"--gpu-memory-gb must be > 1, got {args.gpu_memory_gb}")


def _log(msg: str) -> None:
    print(msg, flush=True)


def _plans(name: str, raw_dir: Path, out: PreprocessedFolder, dataset: DatasetJson, args) -> Plans:
    fp_path, plans_path = out.fingerprint_file, out.plans_file
    fp = Fingerprint.load(fp_path) if fp_path.is_file() else None
    if fp is None:
        fp = extract_fingerprint(raw_dir, dataset, args.num_processes)
        fp.save(fp_path)
        _log(f"wrote {fp_path}")
    overrides = args.spacing or args.model or args.kernel_size or args.gpu_memory_gb is not None
    if plans_path.is_file() and not overrides:
        _log(f"using the existing {plans_path} (edit it, or pass --clean / planning flags to re-plan)")
        return Plans.load(plans_path)
    opts = PlannerOptions(gpu_memory_gb=args.gpu_memory_gb or 8.0, variant=args.model,
                          kernel_size=args.kernel_size, spacing=args.spacing[::-1] if args.spacing else None)
    plans = plan_experiment(name, fp, dataset, opts)
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
    out = PreprocessedFolder.of(dataset_name)
    if args.clean:
        out.clean()
    out.path.mkdir(parents=True, exist_ok=True)
    out.sweep()
    dataset.save(out.dataset_file)
    plans = _plans(dataset_name, raw_dir, out, dataset, args)
    case_ids = Fingerprint.load(out.fingerprint_file).case_ids
    if len(case_ids) >= 2:
        _, msg = ensure_splits(out.splits_file, case_ids)
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
        done_now, skipped, wiped = preprocess_configuration(raw_dir, out, plans, config, dataset, args.num_processes)
        if wiped:
            _log(wiped)
        _log(f"{name}: {done_now} case(s) preprocessed, {skipped} already done -> "
             f"{out.configuration(config.data_identifier).path}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("mednext_plan_and_preprocess", lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    _validate(args)
    names = [find_dataset(d) for d in args.dataset]
    for name in names:
        task = DatasetJson.load(paths.raw_root() / name / "dataset.json").task
        if task == "segmentation":
            run_segmentation(name, args)
        elif task == "classification":
            from mednext_fw.preprocessing.classification import plan_and_preprocess_classification

            plan_and_preprocess_classification(name, input_size=args.input_size, num_workers=args.num_processes,
                                               replan=args.clean, preprocess=not args.no_pp)
        else:
            raise UsageError(f"{name}: task '{task}' in dataset.json is not supported by this command")

if __name__ == "__main__":
    sys.exit(main())
