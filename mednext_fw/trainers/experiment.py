"""What one segmentation run trains on: plans + overrides, data folders, split, output folder.

Command-line overrides (variant, kernel, patch, batch, network arguments) are applied to a copy of
the configuration; that *effective* configuration is what the model folder's ``plans.json`` records,
so inference rebuilds exactly the trained network. A variant/kernel other than the plans' changes
the model folder name (``MedNeXtTrainer_S_kernel5__3d_fullres``), so two such runs never mix folds.
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mednext_fw import paths
from mednext_fw.errors import UserError
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.planners.plans import Configuration, Plans
from mednext_fw.planners.splits import fold_cases, read_splits
from mednext_fw.preprocessing.folder import CaseFolder, PreprocessedFolder

DEFAULT_TRAINER = "MedNeXtTrainer"


class ExperimentError(UserError, ValueError):
    pass


@dataclass
class SegmentationSpec:
    dataset: str  # Dataset###_Name
    configuration: str = "3d_fullres"
    fold: str = "0"  # 0-4 or "all"
    trainer_name: str = DEFAULT_TRAINER
    variant: str | None = None
    kernel_size: int | None = None
    patch_size: list[int] | None = None
    batch_size: int | None = None
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    upkern_from: str | None = None
    pretrained: str | None = None
    oversample_foreground: float = 1 / 3


# One run description for every task: classification uses the same fields (kernel size, UpKern and
# foreground oversampling stay unset there), so both tasks share Experiment and the model-folder rule.
RunSpec = SegmentationSpec


@dataclass
class Experiment:
    spec: SegmentationSpec
    plans: Plans  # effective (overrides applied)
    config: Configuration  # effective
    dataset: DatasetJson
    preprocessed: PreprocessedFolder  # $MEDNEXT_preprocessed/Dataset###_Name
    cases: CaseFolder  # ... /<data_identifier>: the arrays this configuration trains on
    model_dir: Path  # $MEDNEXT_results/Dataset###_Name/<Trainer>__<config>
    train_cases: list[str]
    val_cases: list[str]

    @property
    def fold_dir(self) -> Path:
        return self.model_dir / f"fold_{self.spec.fold}"

    @property
    def preprocessed_dir(self) -> Path:
        return self.preprocessed.path

    @property
    def data_dir(self) -> Path:
        return self.cases.path


def effective_configuration(config: Configuration, spec: SegmentationSpec) -> Configuration:
    cfg = Configuration.from_dict(asdict(config))
    if spec.variant is not None:
        cfg.network.variant = spec.variant.upper()
    if spec.kernel_size is not None:
        cfg.network.with_kernel_size(int(spec.kernel_size))
    if spec.patch_size is not None:
        patch = [int(p) for p in spec.patch_size]
        if len(patch) != cfg.dim or any(p < 1 for p in patch):
            raise ExperimentError(f"--patch-size needs {cfg.dim} positive sizes for '{cfg.name}', got {patch}")
        cfg.patch_size = patch
    if spec.batch_size is not None:
        if spec.batch_size < 1:
            raise ExperimentError(f"--batch-size must be >= 1, got {spec.batch_size}")
        cfg.batch_size = int(spec.batch_size)
    cfg.network.kwargs = {**cfg.network.kwargs, **spec.network_kwargs}
    cfg.validate(f"configuration '{cfg.name}' with the command-line overrides")
    return cfg


def model_folder_name(spec: SegmentationSpec, planned: Configuration, effective: Configuration) -> str:
    name = spec.trainer_name
    net_p, net_e = planned.network, effective.network
    if (net_p.variant, net_p.kernel_size) != (net_e.variant, net_e.kernel_size):
        name += f"_{net_e.variant}_kernel{net_e.kernel_size}"
    return f"{name}__{spec.configuration}"


def prepare_experiment(spec: SegmentationSpec) -> Experiment:
    pre = PreprocessedFolder.of(spec.dataset)
    if not pre.plans_file.is_file():
        raise ExperimentError(f"{pre.plans_file}: not found; run mednext_plan_and_preprocess -d {spec.dataset} first")
    plans = Plans.load(pre.plans_file)
    dataset = DatasetJson.load(pre.dataset_file)
    planned = plans.configuration(spec.configuration)
    if planned.task != "segmentation":
        raise ExperimentError(f"configuration '{spec.configuration}' is a {planned.task} configuration; "
                              f"choose a classification trainer with -tr")
    config = effective_configuration(planned, spec)
    effective = copy.deepcopy(plans)
    effective.configurations = {spec.configuration: config}
    folder = pre.configuration(config.data_identifier or f"{plans.plans_name}_{spec.configuration}",
                               spec.configuration)
    cases = folder.require_complete()  # an interrupted preprocess is refused here, naming the cases
    splits = None if spec.fold == "all" else read_splits(pre.splits_file)
    train, val = fold_cases(splits, spec.fold, cases, str(pre.splits_file))
    model_dir = paths.results_root() / spec.dataset / model_folder_name(spec, planned, config)
    return Experiment(spec, effective, config, dataset, pre, folder, model_dir, train, val)


def write_model_folder_files(exp: Experiment) -> None:
    """``plans.json`` (effective) and ``dataset.json`` in the model folder; refuse to mix settings."""
    target = exp.model_dir / "plans.json"
    new = exp.plans.to_dict()
    if target.is_file():
        old = json.loads(target.read_text())
        old_cfg = old.get("configurations", {}).get(exp.spec.configuration)
        if old_cfg is not None and old_cfg != new["configurations"][exp.spec.configuration]:
            raise ExperimentError(
                f"{target}: this model folder was trained with other settings (patch, batch or network "
                "arguments differ); other folds would not match. Use the same flags, or move the folder away."
            )
    exp.plans.save(target)
    exp.dataset.save(exp.model_dir / "dataset.json")
