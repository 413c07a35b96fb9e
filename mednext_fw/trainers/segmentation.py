"""``MedNeXtTrainer``: 3D/2D segmentation from the plans, composed of replaceable parts.

Each part is one method (``build_network``, ``build_loss``, ``build_data``, ``build_optimizer``,
``build_schedule``), so a variant trainer overrides a single method and registers itself under a new
name. The loop, AMP, checkpoints, resume and DDP come from :class:`BaseTrainer`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mednext_fw.durations import format_duration
from mednext_fw.io.atomic import write_json_atomic
from mednext_fw.io.labels import num_outputs
from mednext_fw.trainers import checkpoint as ckpt_io
from mednext_fw.trainers.base import BaseTrainer, Callback
from mednext_fw.trainers.cascade import CascadeInputs
from mednext_fw.trainers.data.augmentation import rotation_range, training_transforms, validation_transforms
from mednext_fw.trainers.data.cascade import CascadeDataset, cascade_transforms
from mednext_fw.trainers.data.dataset import PreprocessedDataset
from mednext_fw.trainers.data.loader import close_augmenter, default_num_workers, make_augmenter
from mednext_fw.trainers.data.sampler import PatchLoader, enlarged_patch_size
from mednext_fw.trainers.distributed import (DistContext, init_distributed, rank_oversample, shard,
                                             split_batch_size)
from mednext_fw.trainers.experiment import Experiment, SegmentationSpec, prepare_experiment, write_model_folder_files
from mednext_fw.trainers.losses import (DeepSupervisionLoss, build_segmentation_loss, deep_supervision_weights,
                                        dice_from_counts, hard_dice_counts)
from mednext_fw.trainers.registry import TRAINERS
from mednext_fw.trainers.settings import TrainingSettings
from mednext_fw.trainers.weights import init_from_pretrained, init_from_upkern

@TRAINERS.register("MedNeXtTrainer")
class MedNeXtTrainer(BaseTrainer):
    trainer_name = "MedNeXtTrainer"
    metric_name = "pseudo Dice"

    def __init__(self, spec: SegmentationSpec, settings: TrainingSettings, callbacks: Sequence[Callback] = (),
                 dist_ctx: DistContext | None = None, device: torch.device | None = None,
                 experiment: Experiment | None = None):
        if dist_ctx is None:
            dist_ctx, device = init_distributed(settings.device)
        self.exp = experiment or prepare_experiment(spec)
        self.spec = self.exp.spec
        super().__init__(self.exp.fold_dir, settings, callbacks, dist_ctx, device)
        self.trainer_name = self.spec.trainer_name
        self._augmenters: list[Any] = []
        self.cascade = CascadeInputs(self.exp) if self.exp.config.previous_stage else None
        if self.cascade:  # refuse missing previous-stage folds before anything (a log line included) is written
            self.cascade.sources(sorted(set(self.exp.train_cases) | set(self.exp.val_cases)))

    @classmethod
    def from_cli(cls, dataset: str, configuration: str, fold: str, trainer_name: str, options: dict[str, Any],
                 settings: TrainingSettings) -> "MedNeXtTrainer":
        spec = SegmentationSpec(dataset=dataset, configuration=configuration, fold=str(fold),
                                trainer_name=trainer_name, **options)
        return cls(spec, settings)

    # ------------------------------------------------------------------ network
    @property
    def deep_supervision(self) -> bool:
        return bool(self.exp.config.network.deep_supervision)

    def network_builder(self) -> dict[str, Any]:
        cfg, net = self.exp.config, self.exp.config.network
        extra_inputs = self.cascade.num_channels if self.cascade else 0
        kwargs = dict(in_channels=self.exp.dataset.num_channels + extra_inputs,
                      num_classes=num_outputs(self.exp.dataset),
                      variant=net.variant, kernel_size=net.kernel_size, deep_supervision=net.deep_supervision,
                      dim=cfg.dim, checkpointing=net.checkpointing, **{**net.builder_kwargs(), **net.kwargs})
        return {"name": net.name, "kwargs": kwargs}

    def memory_format(self) -> torch.memory_format | None:
        mode = self.settings.channels_last
        if mode == "off" or (mode == "auto" and self.device.type != "cuda"):
            return None
        return torch.channels_last_3d if self.exp.config.dim == 3 else torch.channels_last

    def after_network_built(self, network: nn.Module) -> None:
        if self.spec.upkern_from:
            init_from_upkern(network, Path(self.spec.upkern_from), self.network_builder(), self.logger.log)
        elif self.spec.pretrained:
            init_from_pretrained(network, Path(self.spec.pretrained), self.logger.log)

    def deep_supervision_scales(self) -> list[tuple[float, ...]] | None:
        """The network's outputs and their scale per axis, as the network declares them (a network
        that declares none has one full-resolution output)."""
        if not self.deep_supervision:
            return None
        declared = getattr(ckpt_io.unwrap(self.network), "deep_supervision_scales", None)
        if declared:
            return [tuple(float(v) for v in s) for s in declared]
        return [(1.0,) * self.exp.config.dim]

    # ------------------------------------------------------------------ loss
    def build_loss(self) -> nn.Module:
        base = build_segmentation_loss(self.exp.dataset, self.exp.config.batch_dice)
        if not self.deep_supervision:
            return base
        return DeepSupervisionLoss(base, deep_supervision_weights(len(self.deep_supervision_scales())))

    # ------------------------------------------------------------------ data
    def build_data(self) -> tuple[Iterator, Iterator]:
        cfg, s = self.exp.config, self.settings
        batch = split_batch_size(cfg.batch_size, self.dist.rank, self.dist.world_size)
        seed = (s.seed if s.seed is not None else int(np.random.randint(0, 2**20))) * 100 + self.dist.rank
        ignore = self.exp.dataset.ignore_label
        scales = self.deep_supervision_scales()
        mask_channels = [i for i, m in enumerate(cfg.use_mask_for_norm) if m]
        oversample = rank_oversample(cfg.batch_size, self.spec.oversample_foreground, self.dist.rank,
                                     self.dist.world_size)
        train = PatchLoader(self.dataset_of(self.exp.train_cases), batch,
                            enlarged_patch_size(cfg.patch_size, rotation_range(cfg.dim)), oversample, ignore, seed,
                            final_patch_size=cfg.patch_size)
        val_cases = self.exp.val_cases or self.exp.train_cases
        val = PatchLoader(self.dataset_of(val_cases), batch, cfg.patch_size, oversample, ignore, seed + 1)
        workers = self._workers()
        pin = self.device.type == "cuda"
        self._augmenters = [
            make_augmenter(train, training_transforms(cfg.patch_size, cfg.mirror_axes, scales, mask_channels,
                                                      self.previous_stage_transforms(True)), workers, seed, pin),
            make_augmenter(val, validation_transforms(scales, mask_channels, self.previous_stage_transforms(False)),
                           max(1, workers // 2) if workers else 0, seed + 1, pin),
        ]
        return self._augmenters[0], self._augmenters[1]

    def dataset_of(self, cases: list[str]) -> PreprocessedDataset:
        if self.cascade:
            return CascadeDataset(self.exp.cases, cases, self.cascade.folder)
        return PreprocessedDataset(self.exp.cases, cases)

    def previous_stage_transforms(self, train: bool) -> list:
        if not self.cascade:
            return []
        return cascade_transforms(self.cascade.labels, self.exp.dataset.num_channels, train)

    def _workers(self) -> int:
        s = self.settings
        return s.num_workers if s.num_workers is not None else default_num_workers(self.device.type)

    def close_data(self) -> None:
        for aug in self._augmenters:
            close_augmenter(aug)
        self._augmenters = []

    def split_batch(self, batch: dict) -> tuple[torch.Tensor, Any]:
        data = batch["data"].to(self.device, non_blocking=True)
        fmt = self.memory_format()
        if fmt is not None:
            data = data.contiguous(memory_format=fmt)
        target = [t.to(self.device, non_blocking=True) for t in batch["target"]]
        return data, (target if self.deep_supervision else target[0])

    # ------------------------------------------------------------------ metric
    def validation_counts(self, output: Any, target: Any) -> torch.Tensor:
        out = output[0] if isinstance(output, (list, tuple)) else output
        tgt = target[0] if isinstance(target, (list, tuple)) else target
        regions = self.exp.dataset.foreground_regions if self.exp.dataset.has_regions else None
        return hard_dice_counts(out.float(), tgt, regions, self.exp.dataset.ignore_label)

    def metric_from_counts(self, counts: torch.Tensor) -> tuple[float, list[float]]:
        per_class = dice_from_counts(counts)
        valid = [v for v in per_class if not math.isnan(v)]
        return (float(np.mean(valid)) if valid else float("nan")), per_class

    def checkpoint_extras(self) -> dict[str, Any]:
        # Everything else about the run is in the model folder's plans.json, which inference reads.
        return {"config_name": self.spec.configuration}

    # ------------------------------------------------------------------ run
    def run(self) -> None:
        if self.dist.is_main:
            if self.cascade:
                self.cascade.prepare(sorted(set(self.exp.train_cases) | set(self.exp.val_cases)), self.logger.log,
                                     self.settings.progress_bar)
            write_model_folder_files(self.exp)
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.dist.barrier()
        cfg = self.exp.config
        self.logger.log(
            f"{self.trainer_name}: {self.spec.dataset} / {self.spec.configuration} / fold {self.spec.fold} -> "
            f"{self.output_dir}\n"
            f"  cases: {len(self.exp.train_cases)} train, {len(self.exp.val_cases)} val\n"
            f"  network: {cfg.network.name} variant {cfg.network.variant} kernel {cfg.network.kernel_size} "
            f"{cfg.network.kwargs or ''}\n"
            f"  patch {cfg.patch_size}, batch {cfg.batch_size} over {self.dist.world_size} process(es), "
            f"spacing {cfg.spacing}\n"
            f"  device {self.device}, precision {self.precision.mode}, {torch.get_num_threads()} thread(s), "
            f"{self._workers()} augmentation worker(s), epochs {self.settings.num_epochs} x "
            f"{self.settings.iters_per_epoch} iterations (+{self.settings.val_iters} validation)"
            + (f", fitted to the time budget of {format_duration(self.settings.time_budget_s)} after calibration "
               "(the numbers are upper limits)" if self.settings.time_budget_s else "")
        )
        super().run()

    def keep_validation_probabilities(self) -> bool:
        """``--npz`` / ``--no-npz``; by default on when the dataset's plans hold more than one
        segmentation configuration (the probabilities are what configuration ensembles average)."""
        if self.settings.final_validation_probabilities is not None:
            return bool(self.settings.final_validation_probabilities)
        from mednext_fw.planners.plans import Plans

        planned = Plans.load(self.exp.preprocessed_dir / "plans.json").configurations.values()
        return sum(c.task == "segmentation" for c in planned) > 1

    def _validation_predictor(self):
        from mednext_fw.inference import Predictor

        exp = self.exp
        return Predictor(ckpt_io.unwrap(self.network), exp.plans, exp.config, exp.dataset, device=self.device,
                         tta=self.settings.final_validation_tta)

    def _final_validation_estimate(self, predictor, cases: Sequence[str]):
        props = [self.exp.cases.read_properties(c) for c in cases]
        shapes = [p.shape_after_resampling for p in props]
        native = [float(np.prod(p.shape_before_cropping)) for p in props]
        was_training = self.network.training
        estimate = predictor.estimate(shapes, native)
        self.network.train(was_training)
        return estimate

    def estimate_final_validation_s(self) -> float:
        mine = shard(self.exp.val_cases, self.dist.rank, self.dist.world_size)
        return self._final_validation_estimate(self._validation_predictor(), mine).seconds if mine else 0.0

    def _drop_stale_validation(self, out_dir: Path, ending: str) -> None:
        """Delete validation predictions that other weights made (an earlier run, the other checkpoint);
        ``weights.json`` names the weights the folder's predictions come from."""
        marker, source = out_dir / "weights.json", self.weights_source()
        if source is not None:
            try:
                if json.loads(marker.read_text()) == source:
                    return
            except (OSError, ValueError):
                pass
        for case in self.exp.val_cases:
            (out_dir / f"{case}{ending}").unlink(missing_ok=True)
            (out_dir / f"{case}.npz").unlink(missing_ok=True)
        if source is not None:
            write_json_atomic(source, marker)

    def final_validation(self) -> None:
        from mednext_fw.evaluation import evaluate_folders, format_table

        exp = self.exp
        out_dir = self.output_dir / "validation"
        out_dir.mkdir(parents=True, exist_ok=True)
        ending = exp.dataset.file_ending
        keep_probs = self.keep_validation_probabilities()
        if self.dist.is_main:
            self._drop_stale_validation(out_dir, ending)
        self.dist.barrier()
        predictor = self._validation_predictor()
        mine = shard(exp.val_cases, self.dist.rank, self.dist.world_size)
        todo = [c for c in mine if not (out_dir / f"{c}{ending}").is_file()]
        if todo:
            estimate = self._final_validation_estimate(predictor, todo)
            self.logger.log(f"Final validation, estimated: {estimate.describe()}")
        for case in tqdm(mine, desc="final validation", disable=not (self.dist.is_main and self.settings.progress_bar)):
            target = out_dir / f"{case}{ending}"
            probs = out_dir / f"{case}.npz" if keep_probs else None
            if target.is_file() and (probs is None or probs.is_file()):  # a re-run validation resumes
                continue
            data, props = exp.cases.read_data(case, mmap=False), exp.cases.read_properties(case)
            if self.cascade:
                data = self.cascade.with_previous(case, data)
            predictor.predict_preprocessed_to_file(data, props, target, probs)
        self.dist.barrier()
        if not self.dist.is_main:
            return
        summary = evaluate_folders(exp.preprocessed.gt_dir, out_dir, exp.dataset.foreground_regions,
                                   ending, ignore_label=exp.dataset.ignore_label,
                                   output_json=out_dir / "summary.json", output_csv=out_dir / "summary.csv",
                                   case_ids=exp.val_cases)
        self.logger.log(f"Final validation (full cases, native geometry; weights of {self.weights_from}):\n"
                        + format_table(summary))
