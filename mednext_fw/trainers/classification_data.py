"""What one classification run trains on and how its batches are drawn.

The run is described by the shared :class:`~mednext_fw.trainers.experiment.RunSpec` and
:class:`~mednext_fw.trainers.experiment.Experiment` (train/val "cases" are image ids here) with the
shared model-folder naming and fold rule; :class:`ClassificationData` adds the memory-mapped cache.
Training batches come from :class:`ClassificationBatchLoader` through the same (multi-process)
augmenter as segmentation, with :class:`AugmentTransform` applying the planned 2D augmentation;
validation batches come from :func:`batch_stream` directly and are never augmented.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from batchgenerators.dataloading.data_loader import SlimDataLoaderBase
from batchgenerators.transforms.abstract_transforms import AbstractTransform

from mednext_fw import paths
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.planners.plans import Configuration, NetworkPlan, Plans
from mednext_fw.planners.splits import fold_cases, read_splits
from mednext_fw.preprocessing.classification import load_cache
from mednext_fw.preprocessing.folder import CaseFolder, PreprocessedFolder
from mednext_fw.trainers.data.classification_augmentation import Augmentation2D, augment_batch
from mednext_fw.trainers.experiment import Experiment, ExperimentError, RunSpec, model_folder_name


def effective_configuration(planned: Configuration, spec: RunSpec, network_name: str | None,
                            preset: dict[str, Any], preset_for_input: Callable[[int], dict]) -> Configuration:
    """Plans + trainer preset + command line. Network arguments come, in rising priority, from the
    trainer's preset, the plans' network (when it is the trainer's), the plans' ``pretrained`` entry for
    this network (local weight files) and the command line."""
    cfg = Configuration.from_dict(asdict(planned))
    if spec.patch_size is not None:
        if len(set(spec.patch_size)) != 1:
            raise ExperimentError(f"--patch-size for a classifier is one square side, got {spec.patch_size}")
        if spec.patch_size[0] != cfg.patch_size[0]:
            raise ExperimentError(f"--patch-size {spec.patch_size[0]}: the cached images are {cfg.patch_size[0]} px; "
                                  f"re-run mednext_plan_and_preprocess -d {spec.dataset} --input-size "
                                  f"{spec.patch_size[0]}")
    if spec.batch_size is not None:
        if spec.batch_size < 1:
            raise ExperimentError(f"--batch-size must be >= 1, got {spec.batch_size}")
        cfg.batch_size = int(spec.batch_size)
    name = network_name or cfg.network.name
    planned_kwargs = cfg.network.kwargs if cfg.network.name == name else {}
    weights = dict(cfg.extra.get("pretrained", {}).get(name, {}))
    kwargs = {**preset, **preset_for_input(int(cfg.patch_size[0])), **planned_kwargs, **weights, **spec.network_kwargs}
    if spec.variant is not None:
        kwargs["variant"] = spec.variant
    cfg.network = NetworkPlan(name=name, variant=str(kwargs.get("variant", "")), kernel_size=3,
                              deep_supervision=False, checkpointing=False, kwargs=kwargs)
    return cfg


def prepare_classification_experiment(spec: RunSpec, network_name: str | None = None,
                                      preset: dict[str, Any] | None = None,
                                      preset_for_input: Callable[[int], dict] = lambda s: {}) -> Experiment:
    for flag, value in (("-k/--kernel-size", spec.kernel_size), ("--upkern-from", spec.upkern_from)):
        if value is not None:
            raise ExperimentError(f"{flag} applies to MedNeXt segmentation networks only")
    pre = paths.preprocessed_root() / spec.dataset
    if not (pre / "plans.json").is_file():
        raise ExperimentError(f"{pre / 'plans.json'}: not found; run mednext_plan_and_preprocess -d {spec.dataset}")
    plans = Plans.load(pre / "plans.json")
    planned = plans.configuration(spec.configuration)
    if planned.task != "classification":
        raise ExperimentError(f"configuration '{spec.configuration}' is a {planned.task} configuration; the "
                              f"classification trainers need '2d_cls' of a classification dataset")
    preset = preset or {}
    config = effective_configuration(planned, spec, network_name, preset, preset_for_input)
    # The trainer's own setting names the folder; command-line variants get a suffix (shared rule).
    base = effective_configuration(planned, replace(spec, variant=None, network_kwargs={}), network_name, preset,
                                   preset_for_input)
    effective = copy.deepcopy(plans)
    effective.configurations = {spec.configuration: config}
    data_dir = pre / config.data_identifier
    _, index = load_cache(data_dir)
    ids = list(index["ids"])
    if spec.fold == "all":
        train, val = list(ids), list(ids)
    else:  # the one fold rule (planners.splits)
        splits_file = PreprocessedFolder(pre).splits_file
        train, val = fold_cases(read_splits(splits_file), spec.fold, ids, str(splits_file))
    model_dir = paths.results_root() / spec.dataset / model_folder_name(spec, base, config)
    return Experiment(spec, effective, config, DatasetJson.load(pre / "dataset.json"), PreprocessedFolder(pre),
                      CaseFolder(data_dir, spec.dataset, spec.configuration), model_dir, train, val)


@dataclass
class ClassificationData:
    images: np.ndarray  # (N, C, S, S) memory-mapped
    labels: np.ndarray  # (N,) int64
    ids: list[str]
    case_ids: list[str]
    class_names: list[str]
    train_idx: list[int]
    val_idx: list[int]

    @classmethod
    def load(cls, exp: Experiment) -> "ClassificationData":
        images, index = load_cache(exp.data_dir)
        ids = list(index["ids"])
        pos = {i: n for n, i in enumerate(ids)}
        names = list(index.get("class_names") or exp.config.extra["class_names"])
        return cls(images, np.asarray(index["labels"], dtype=np.int64), ids, list(index.get("case_ids", ids)),
                   names, [pos[i] for i in exp.train_cases], [pos[i] for i in exp.val_cases])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def steps_per_pass(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def batch_stream(images: np.ndarray, labels: np.ndarray, indices: Sequence[int], global_batch: int, rank: int,
                 world_size: int, shuffle: bool, seed: int, start_pass: int = 0) -> Iterator[dict[str, Any]]:
    """Endless passes over ``indices`` in global batches; each rank takes its share of every batch.

    The last batch of a pass is filled up by wrapping around, with weight 0 on the filler, so every
    rank gets the same batch size and validation still counts each image exactly once.
    """
    if not len(indices):
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
            data = np.asarray(images[chosen[sort]], dtype=np.float32)[np.argsort(sort, kind="stable")]
            yield {"data": torch.from_numpy(np.ascontiguousarray(data)),
                   "target": torch.from_numpy(labels[chosen]),
                   "weight": torch.from_numpy(weight[sl] if not shuffle else np.ones(len(chosen), np.float32)),
                   "index": torch.from_numpy(chosen), "aug_seed": int(rng.integers(2**31))}
        n_pass += 1


class ClassificationBatchLoader(SlimDataLoaderBase):
    """Training batches of :func:`batch_stream` as a batchgenerators loader (one stream per worker)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, indices: Sequence[int], global_batch: int,
                 rank: int, world_size: int, seed: int, start_pass: int = 0):
        super().__init__(None, global_batch, None)
        self._args = (images, labels, list(indices), global_batch, rank, world_size)
        self.seed, self.start_pass = seed, start_pass
        self._stream: Iterator | None = None

    def set_thread_id(self, thread_id: int) -> None:
        # Each worker walks its own seeded stream: otherwise all workers would return the same batches.
        super().set_thread_id(thread_id)
        self.seed = self.seed * 1009 + thread_id
        self._stream = None

    def generate_train_batch(self) -> dict[str, Any]:
        if self._stream is None:
            self._stream = batch_stream(*self._args, shuffle=True, seed=self.seed, start_pass=self.start_pass)
        return next(self._stream)


class AugmentTransform(AbstractTransform):
    """Applies :func:`augment_batch` with the batch's own seed, so a batch is reproducible."""

    def __init__(self, aug: Augmentation2D, mirror_axes: Sequence[int] = ()):
        self.aug, self.mirror_axes = aug, list(mirror_axes)

    def __call__(self, **batch: Any) -> dict[str, Any]:
        rng = np.random.default_rng(batch["aug_seed"])
        data = augment_batch(batch["data"].numpy(), rng, self.aug, self.mirror_axes)
        batch["data"] = torch.from_numpy(np.ascontiguousarray(data))
        return batch
