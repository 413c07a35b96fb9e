"""What one classification run trains on (plans + overrides, cached arrays, fold) and its batch stream."""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from mednext_fw import paths
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.planners.plans import Configuration, NetworkPlan, Plans
from mednext_fw.planners.splits import fold_cases, read_splits
from mednext_fw.preprocessing.classification import load_cache
from mednext_fw.trainers.experiment import ExperimentError


@dataclass
class ClassificationSpec:
    dataset: str
    configuration: str = "2d_cls"
    fold: str = "0"  # 0-4 or "all"
    trainer_name: str = "ClassificationTrainer"
    variant: str | None = None
    input_size: int | None = None
    batch_size: int | None = None
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None


@dataclass
class ClassificationExperiment:
    spec: ClassificationSpec
    plans: Plans  # effective
    config: Configuration  # effective
    dataset: DatasetJson
    data_dir: Path
    model_dir: Path
    images: np.ndarray  # (N, C, S, S) memory-mapped
    labels: np.ndarray  # (N,) int64
    ids: list[str]
    train_idx: list[int]
    val_idx: list[int]
    class_names: list[str]

    @property
    def fold_dir(self) -> Path:
        return self.model_dir / f"fold_{self.spec.fold}"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def steps_per_pass(self, n: int) -> int:
        return math.ceil(n / self.config.batch_size)


def effective_configuration(planned: Configuration, spec: ClassificationSpec, network_name: str | None,
                            preset: dict[str, Any], preset_for_input: Callable[[int], dict]) -> Configuration:
    """Plans + trainer preset + command line. The plans' network arguments apply when the plans name the
    trainer's network, so a user can tune a plug-in by editing plans.json."""
    cfg = Configuration.from_dict(asdict(planned))
    if spec.input_size is not None:
        if spec.input_size != cfg.patch_size[0]:
            raise ExperimentError(f"--patch-size {spec.input_size}: the cached images are {cfg.patch_size[0]} px; "
                                  f"re-run mednext_plan_and_preprocess -d {spec.dataset} --input-size "
                                  f"{spec.input_size}")
    if spec.batch_size is not None:
        if spec.batch_size < 1:
            raise ExperimentError(f"--batch-size must be >= 1, got {spec.batch_size}")
        cfg.batch_size = int(spec.batch_size)
    name = network_name or cfg.network.name
    planned_kwargs = cfg.network.kwargs if cfg.network.name == name else {}
    kwargs = {**preset, **preset_for_input(int(cfg.patch_size[0])), **planned_kwargs, **spec.network_kwargs}
    if spec.variant is not None:
        kwargs["variant"] = spec.variant
    cfg.network = NetworkPlan(name=name, variant=str(kwargs.get("variant", "")), kernel_size=3,
                              deep_supervision=False, checkpointing=False, kwargs=kwargs)
    return cfg


def prepare_classification_experiment(spec: ClassificationSpec, network_name: str | None = None,
                                      preset: dict[str, Any] | None = None,
                                      preset_for_input: Callable[[int], dict] = lambda s: {}) -> ClassificationExperiment:
    pre = paths.preprocessed_root() / spec.dataset
    plans = Plans.load(pre / "plans.json")
    planned = plans.configuration(spec.configuration)
    if planned.task != "classification":
        raise ExperimentError(f"configuration '{spec.configuration}' is a {planned.task} configuration; the "
                              f"classification trainers need '2d_cls' of a classification dataset")
    config = effective_configuration(planned, spec, network_name, preset or {}, preset_for_input)
    effective = copy.deepcopy(plans)
    effective.configurations = {spec.configuration: config}
    data_dir = pre / config.data_identifier
    images, index = load_cache(data_dir)
    ids = list(index["ids"])
    splits_file = pre / "splits_final.json"
    if spec.fold == "all":  # as for segmentation: train on everything, validate on the same images
        train = val = list(range(len(ids)))
    else:  # the one fold rule (planners.splits), over image ids
        train_ids, val_ids = fold_cases(read_splits(splits_file), spec.fold, ids, str(splits_file))
        pos = {i: n for n, i in enumerate(ids)}
        train, val = [pos[i] for i in train_ids], [pos[i] for i in val_ids]
    # Another variant than the trainer's preset gets its own model folder, so folds never mix.
    folder = spec.trainer_name + (f"_{spec.variant}" if spec.variant and spec.variant != (preset or {}).get("variant")
                                  else "")
    model_dir = paths.results_root() / spec.dataset / f"{folder}__{spec.configuration}"
    class_names = list(index.get("class_names") or planned.extra["class_names"])
    return ClassificationExperiment(spec, effective, config, DatasetJson.load(pre / "dataset.json"), data_dir,
                                    model_dir, images, np.asarray(index["labels"], dtype=np.int64), ids,
                                    train, val, class_names)


def batch_stream(images: np.ndarray, labels: np.ndarray, indices: list[int], global_batch: int, rank: int,
                 world_size: int, shuffle: bool, seed: int, start_pass: int = 0,
                 mirror_axes: list[int] | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Endless passes over ``indices`` in global batches; each rank takes its share of every batch.

    The last batch of a pass is filled up by wrapping around, with weight 0 on the filler, so every
    rank gets the same batch size and validation still counts each image exactly once.
    """
    if not indices:
        raise ExperimentError("no images to draw batches from")
    idx = np.asarray(indices, dtype=np.int64)
    b = max(global_batch, world_size)
    n_pass = start_pass
    while True:
        rng = np.random.default_rng([seed, n_pass])
        order = rng.permutation(idx) if shuffle else idx
        steps = math.ceil(len(order) / b)
        padded = np.resize(order, steps * b)  # np.resize repeats from the start
        weight = (np.arange(steps * b) < len(order)).astype(np.float32)
        for s in range(steps):
            sl = slice(s * b + rank, (s + 1) * b, world_size)
            chosen = padded[sl]
            sort = np.argsort(chosen, kind="stable")  # memmaps read fastest in index order
            data = np.asarray(images[chosen[sort]], dtype=np.float32)
            data = data[np.argsort(sort, kind="stable")]
            for ax in mirror_axes or []:  # planned mirroring (none by default: the recipes use no augmentation)
                flip = rng.random(len(chosen)) < 0.5
                data[flip] = np.flip(data[flip], axis=ax + 2)  # (batch, C, H, W)
            yield {"data": torch.from_numpy(np.ascontiguousarray(data)),
                   "target": torch.from_numpy(labels[chosen]),
                   "weight": torch.from_numpy(weight[sl] if not shuffle else np.ones(len(chosen), np.float32))}
        n_pass += 1
