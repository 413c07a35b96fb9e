"""Plan and preprocess one segmentation dataset: integrity check -> fingerprint -> plans -> splits -> arrays.

The stage function behind ``mednext_plan_and_preprocess`` (and the demo). Every step resumes: an
existing fingerprint and plans are reused unless planning options are given, finished cases are kept.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from mednext_fw import paths
from mednext_fw.durations import parse_duration
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.integrity import verify_dataset
from mednext_fw.io.labels import num_outputs
from mednext_fw.planners.device_budget import detect_budget, fit_plans_to_cpu
from mednext_fw.planners.fingerprint import Fingerprint, extract_fingerprint
from mednext_fw.planners.planner import PlannerOptions, plan_experiment
from mednext_fw.planners.plans import Plans
from mednext_fw.planners.splits import ensure_splits
from mednext_fw.preprocessing.folder import PreprocessedFolder
from mednext_fw.preprocessing.preprocessor import copy_gt_segmentations, preprocess_configuration

CONFIGS = ("2d", "3d_fullres", "3d_lowres")
log_info = logging.getLogger(__name__).info


@dataclass
class PreprocessOptions:
    configurations: list[str] = field(default_factory=lambda: list(CONFIGS))
    num_processes: int = 2
    verify: bool = True
    preprocess: bool = True  # False: plan only
    clean: bool = False  # recompute fingerprint and plans, redo every case (a splits_final.json is kept)
    spacing_zyx: list[float] | None = None  # target spacing in array order (the CLI takes x y z)
    gpu_memory_gb: float | None = None
    variant: str | None = None
    kernel_size: int | None = None
    device: str = "auto"  # the device the plan is made for (a CPU plan without a GPU)
    time_budget: str | None = None  # e.g. "20m": recorded in the plans; on a CPU it sets the step-time target
    force_lowres: bool = False  # --lowres: 3d_lowres and the cascade even when the fullres patch covers the image

    @property
    def replans(self) -> bool:
        return bool(self.spacing_zyx or self.variant or self.kernel_size or self.gpu_memory_gb is not None
                    or self.time_budget or self.device != "auto" or self.force_lowres)


def _plans(raw_dir, out: PreprocessedFolder, dataset: DatasetJson, opts: PreprocessOptions,
           log: Callable[[str], None]) -> Plans:
    fp = Fingerprint.load(out.fingerprint_file) if out.fingerprint_file.is_file() else None
    if fp is None:
        fp = extract_fingerprint(raw_dir, dataset, opts.num_processes)
        fp.save(out.fingerprint_file)
        log(f"wrote {out.fingerprint_file}")
    if out.plans_file.is_file() and not opts.replans:
        log(f"using the existing {out.plans_file} (edit it, or pass --clean / planning flags to re-plan)")
        return Plans.load(out.plans_file)
    budget_s = parse_duration(opts.time_budget) if opts.time_budget else None
    device = detect_budget(opts.device, opts.gpu_memory_gb, budget_s)
    planner_opts = PlannerOptions(gpu_memory_gb=device.memory_gb, variant=opts.variant, kernel_size=opts.kernel_size,
                                  spacing=opts.spacing_zyx, notes=list(device.notes), force_lowres=opts.force_lowres)
    plans = plan_experiment(out.name, fp, dataset, planner_opts)
    if device.device == "cpu":
        fit_plans_to_cpu(plans, fp, device, dataset.num_channels, num_outputs(dataset), opts.variant,
                         keep_lowres=opts.force_lowres)
    if budget_s:
        for config in plans.configurations.values():
            config.extra["time_budget"] = opts.time_budget
    if out.plans_file.is_file():  # keep configurations a user added by hand
        for k, v in Plans.load(out.plans_file).configurations.items():
            plans.configurations.setdefault(k, v)
    plans.save(out.plans_file)
    log(f"wrote {out.plans_file}")
    for note in plans.planner_notes:
        log(f"  {note}")
    return plans


def plan_and_preprocess(dataset_name: str, opts: PreprocessOptions | None = None,
                        log: Callable[[str], None] = log_info) -> PreprocessedFolder:
    """``$MEDNEXT_raw/<dataset_name>`` -> ``$MEDNEXT_preprocessed/<dataset_name>``; returns the latter."""
    opts = opts or PreprocessOptions()
    raw_dir = paths.raw_root() / dataset_name
    # The raw dataset (dataset.json included) is checked before anything is written.
    dataset = verify_dataset(raw_dir, opts.num_processes) if opts.verify else DatasetJson.load(raw_dir / "dataset.json")
    out = PreprocessedFolder.of(dataset_name)
    if opts.clean:
        out.clean()
    out.path.mkdir(parents=True, exist_ok=True)
    out.sweep()
    dataset.save(out.dataset_file)
    plans = _plans(raw_dir, out, dataset, opts, log)
    case_ids = Fingerprint.load(out.fingerprint_file).case_ids
    if len(case_ids) >= 2:
        log(ensure_splits(out.splits_file, case_ids)[1])
    else:
        log("only 1 training case: no cross-validation splits written (train with fold 'all')")
    if not opts.preprocess:
        return out
    copy_gt_segmentations(raw_dir, out, dataset)
    for name in opts.configurations:
        if name not in plans.configurations:
            log(f"{name}: not in the plans (not needed for this dataset), skipped")
            continue
        config = plans.configurations[name]
        done_now, skipped, wiped = preprocess_configuration(raw_dir, out, plans, config, dataset, opts.num_processes)
        if wiped:
            log(wiped)
        log(f"{name}: {done_now} case(s) preprocessed, {skipped} already done -> "
            f"{out.configuration(config.data_identifier).path}")
    return out
