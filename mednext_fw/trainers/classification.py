"""``ClassificationTrainer``: 2D image classification on the cached ``2d_cls`` arrays.

The loop, AMP, the NaN guard, checkpoints/resume, signals, logs, the progress plot and DDP come from
:class:`BaseTrainer`; this class supplies the parts: the network named by the trainer (plug-ins set
``network_name`` and a preset), cross-entropy plus the model's ``auxiliary_loss()``, AdamW over the
model's ``param_groups`` (Adam when weight decay is 0), a schedule that keeps the groups' learning-rate
ratios, batches drawn from the memory-mapped cache, and the final validation that writes the
evaluation module's metrics to ``validation/summary.json``.

An epoch is one pass over the fold's training images (``--iters-per-epoch`` caps it), and the
per-epoch validation covers every validation image (``--val-iters`` caps it); the metric driving the
EMA and ``checkpoint_best.pth`` is accuracy.
"""
from __future__ import annotations

import math
from dataclasses import asdict, replace
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from mednext_fw.network_architectures.classification.base import auxiliary_loss, on_train_step, param_groups
from mednext_fw.trainers import checkpoint as ckpt_io
from mednext_fw.trainers.base import BaseTrainer, Callback
from mednext_fw.trainers.classification_data import (AugmentTransform, ClassificationBatchLoader, ClassificationData,
                                                     batch_stream, prepare_classification_experiment, steps_per_pass)
from mednext_fw.trainers.data.classification_augmentation import resolve_augmentation
from mednext_fw.trainers.data.loader import close_augmenter, default_num_workers, make_augmenter
from mednext_fw.trainers.distributed import DistContext, init_distributed
from mednext_fw.trainers.experiment import Experiment, RunSpec, write_model_folder_files
from mednext_fw.trainers.settings import TrainingSettings


class GroupScaledSchedule:
    """Per-epoch factor applied to every group's own initial LR (gates keep their 10x), one of
    ``constant`` (the HoViT and X-ray recipes), ``cosine`` or ``poly``."""

    KINDS = ("constant", "cosine", "poly")

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float, max_epochs: int, kind: str = "constant"):
        if kind not in self.KINDS:
            raise ValueError(f"unknown schedule '{kind}' (choose {', '.join(self.KINDS)})")
        self.optimizer, self.base_lr, self.max_epochs, self.kind = optimizer, base_lr, max(1, max_epochs), kind
        self.initial = [g["lr"] for g in optimizer.param_groups]
        self.epoch = 0

    def factor(self, epoch: int) -> float:
        frac = min(max(epoch, 0), self.max_epochs) / self.max_epochs
        if self.kind == "cosine":
            return 0.5 * (1 + math.cos(math.pi * frac))
        if self.kind == "poly":
            return (1 - frac) ** 0.9
        return 1.0

    def step(self, epoch: int) -> float:
        self.epoch = epoch
        f = self.factor(epoch)
        for group, lr0 in zip(self.optimizer.param_groups, self.initial):
            group["lr"] = lr0 * f
        return self.base_lr * f

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "initial": self.initial, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.initial, self.epoch = list(state["initial"]), int(state["epoch"])


class ClassificationTrainer(BaseTrainer):
    trainer_name = "ClassificationTrainer"
    metric_name = "accuracy"
    network_name: str | None = None  # None: the network in the plans
    network_preset: dict[str, Any] = {}
    schedule_kind = "constant"
    precise_bn_images = 4096  # training images used to re-estimate BatchNorm statistics each epoch (0: off)
    # Recipe defaults that ``mednext_train`` uses for the flags a user leaves out.
    settings_defaults: dict[str, Any] = {"num_epochs": 30, "lr": 5e-4, "weight_decay": 0.0, "adam_eps": 1e-8,
                                         "iters_per_epoch": 10**9, "val_iters": 10**9}

    def __init__(self, spec: RunSpec, settings: TrainingSettings, callbacks: Sequence[Callback] = (),
                 dist_ctx: DistContext | None = None, device: torch.device | None = None,
                 experiment: Experiment | None = None):
        if dist_ctx is None:
            dist_ctx, device = init_distributed(settings.device)
        self.exp = experiment or prepare_classification_experiment(
            spec, self.network_name, self.network_preset, self.preset_for_input)
        self.spec = self.exp.spec
        self.data = ClassificationData.load(self.exp)
        cfg = self.exp.config
        self.augmentation = resolve_augmentation(cfg.extra.get("augmentation"), f"{self.exp.model_dir}/plans.json")
        # An epoch is one pass; the flags only cap it (see the module docstring). The caller's settings
        # object is left as it was given.
        settings = replace(settings, iters_per_epoch=max(1, min(settings.iters_per_epoch, steps_per_pass(
            len(self.data.train_idx), cfg.batch_size))), val_iters=min(settings.val_iters, steps_per_pass(
                len(self.data.val_idx), cfg.batch_size)))
        super().__init__(self.exp.fold_dir, settings, callbacks, dist_ctx, device)
        self.trainer_name = self.spec.trainer_name
        self._step_epoch, self._step_in_epoch = -1, 0
        self._augmenter: Any = None

    @classmethod
    def preset_for_input(cls, input_size: int) -> dict[str, Any]:
        """Network arguments that depend on the planned input side (plug-ins override)."""
        return {}

    @classmethod
    def from_cli(cls, dataset: str, configuration: str, fold: str, trainer_name: str, options: dict[str, Any],
                 settings: TrainingSettings) -> "ClassificationTrainer":
        spec = RunSpec(dataset=dataset, configuration=configuration, fold=str(fold), trainer_name=trainer_name,
                       **options)
        return cls(spec, settings)

    # ------------------------------------------------------------------ parts
    def network_builder(self) -> dict[str, Any]:
        net = self.exp.config.network
        return {"name": net.name, "kwargs": {"in_channels": len(self.exp.config.normalization),
                                             "num_classes": self.data.num_classes, **net.kwargs}}

    def after_network_built(self, network: nn.Module) -> None:
        if self.spec.pretrained:
            from pathlib import Path

            from mednext_fw.trainers.weights import init_from_pretrained

            init_from_pretrained(network, Path(self.spec.pretrained), self.logger.log)

    def build_optimizer(self, params) -> torch.optim.Optimizer:
        s = self.settings
        groups = param_groups(self.network, s.lr, s.weight_decay)
        if s.weight_decay == 0:  # the recipes' plain Adam
            return torch.optim.Adam(groups, lr=s.lr, eps=s.adam_eps)
        return torch.optim.AdamW(groups, lr=s.lr, weight_decay=s.weight_decay, eps=s.adam_eps)

    def build_schedule(self, optimizer: torch.optim.Optimizer) -> GroupScaledSchedule:
        return GroupScaledSchedule(optimizer, self.settings.lr, self.settings.num_epochs,
                                   self.exp.config.extra.get("lr_schedule", self.schedule_kind))

    def build_loss(self) -> nn.Module:
        return nn.CrossEntropyLoss(reduction="none")

    def compute_loss(self, output: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        labels, weights = target
        ce = (self.loss(output.float(), labels) * weights).sum() / weights.sum().clamp_min(1.0)
        aux = auxiliary_loss(self.model) if self.model.training else None
        return ce if aux is None else ce + aux.float()

    def build_data(self) -> tuple[Iterator, Iterator]:
        """Training batches augmented in the loader's worker processes; validation batches as cached."""
        d, s, cfg = self.data, self.settings, self.exp.config
        seed = s.seed if s.seed is not None else int(np.random.randint(0, 2**20))
        # Resume continues the stream at the next pass, with the same seed-derived orders.
        loader = ClassificationBatchLoader(d.images, d.labels, d.train_idx, cfg.batch_size, self.dist.rank,
                                           self.dist.world_size, seed * 100 + self.dist.rank, start_pass=self.epoch)
        workers = s.num_workers if s.num_workers is not None else default_num_workers(self.device.type)
        self._augmenter = make_augmenter(loader, AugmentTransform(self.augmentation, cfg.mirror_axes), workers, seed,
                                         pin_memory=self.device.type == "cuda")
        val = batch_stream(d.images, d.labels, d.val_idx, cfg.batch_size, self.dist.rank, self.dist.world_size,
                           shuffle=False, seed=seed)
        return self._augmenter, val

    def close_data(self) -> None:
        if self._augmenter is not None:
            close_augmenter(self._augmenter)
            self._augmenter = None

    def split_batch(self, batch: dict) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        to = dict(device=self.device, non_blocking=True)
        return batch["data"].to(**to), (batch["target"].to(**to), batch["weight"].to(**to))

    def train_step(self, batch: Any, where: str = "") -> tuple[float, bool]:
        if self._step_epoch != self.epoch:
            self._step_epoch, self._step_in_epoch = self.epoch, 0
        iters = self.settings.iters_per_epoch
        on_train_step(self.network, self.epoch * iters + self._step_in_epoch, self.settings.num_epochs * iters)
        self._step_in_epoch += 1
        result = super().train_step(batch, where)
        if self._step_in_epoch == iters and self.precise_bn_images > 0:
            self.recalibrate_batchnorm()
        return result

    @torch.no_grad()
    def recalibrate_batchnorm(self) -> None:
        """Re-estimate BatchNorm statistics of the current weights on training images ("precise BN").

        Running averages lag behind weights that move quickly: HoViT, all BatchNorm, validated at
        31-37% for its first epochs on Dataset101 although it fit the training set, and at 94-100%
        once its statistics were re-estimated (measured). Only the statistics change, never a weight,
        so training itself is unaffected; frozen parts kept in eval mode are left alone.
        """
        net = ckpt_io.unwrap(self.network)
        bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
        if not bns:
            return
        drops = [m for m in net.modules() if isinstance(m, nn.Dropout) and m.training]
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        for d in drops:
            d.eval()
        rng = np.random.default_rng([self.settings.seed or 0, self.epoch])
        # Shuffled like training batches: class-sorted batches would understate the variances.
        idx = rng.permutation(self.data.train_idx)[:self.precise_bn_images][self.dist.rank::self.dist.world_size]
        # Near-equal chunks of at least a batch: a trailing single image would break BatchNorm1d heads.
        for chunk in np.array_split(idx, max(1, len(idx) // self.exp.config.batch_size)):
            x = torch.from_numpy(np.array(self.data.images[np.sort(chunk)], dtype=np.float32))
            with self.precision.autocast():
                net(x.to(self.device))
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
            if self.dist.enabled:  # every rank validates and saves with the same statistics
                for buf in (m.running_mean, m.running_var):
                    buf.copy_(self.dist.all_reduce_sum(buf.clone()) / self.dist.world_size)
        for d in drops:
            d.train()

    def validation_counts(self, output: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        labels, weights = target
        k = self.data.num_classes
        pred = output.argmax(1)
        cm = torch.zeros(k * k, dtype=torch.float64, device=output.device)
        cm.index_add_(0, labels * k + pred, weights.to(torch.float64))
        return cm

    def metric_from_counts(self, counts: torch.Tensor) -> tuple[float, list[float]]:
        cm = counts.reshape(self.data.num_classes, self.data.num_classes)
        total = float(cm.sum())
        support = cm.sum(1)
        recall = [float(cm[i, i] / support[i]) if support[i] > 0 else float("nan") for i in range(len(support))]
        return (float(cm.trace()) / total if total > 0 else float("nan")), recall

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"config_name": self.spec.configuration, "dataset_name": self.spec.dataset, "fold": self.spec.fold,
                "model_folder": self.exp.model_dir.name, "task": "classification",
                "class_names": self.data.class_names, "configuration": asdict(self.exp.config)}

    # ------------------------------------------------------------------ run
    def run(self) -> None:
        if self.dist.is_main:
            write_model_folder_files(self.exp)
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.dist.barrier()
        d, cfg = self.data, self.exp.config
        self.logger.log(
            f"{self.trainer_name}: {self.spec.dataset} / {self.spec.configuration} / fold {self.spec.fold} -> "
            f"{self.output_dir}\n"
            f"  images: {len(d.train_idx)} train, {len(d.val_idx)} val ({d.num_classes} classes {d.class_names})\n"
            f"  network: {cfg.network.name} {cfg.network.kwargs}\n"
            f"  input {cfg.patch_size}, batch {cfg.batch_size} over {self.dist.world_size} process(es); "
            f"{type(self).__name__} lr {self.settings.lr:g} wd {self.settings.weight_decay:g}\n"
            f"  augmentation {cfg.extra.get('augmentation')} (flips on axes {cfg.mirror_axes})\n"
            f"  device {self.device}, precision {self.precision.mode}, epochs {self.settings.num_epochs} x "
            f"{self.settings.iters_per_epoch} iterations (+{self.settings.val_iters} validation)")
        super().run()

    def final_validation(self) -> None:
        """Predict every validation image once and score it with the evaluation module."""
        if not self.dist.is_main:
            return
        from mednext_fw.evaluation import classification_metrics, per_case_accuracy
        from mednext_fw.inference.classification import ClassificationPredictor, write_predictions_csv
        from mednext_fw.io.atomic import write_json_atomic

        d, cfg = self.data, self.exp.config
        order = np.sort(d.val_idx)
        predictor = ClassificationPredictor([ckpt_io.unwrap(self.network)], cfg, d.class_names, self.device)
        probs = predictor.predict_arrays(d.images, cfg.batch_size, self.settings.progress_bar, indices=order)
        y_true, y_pred = d.labels[order], probs.argmax(1)
        metrics = classification_metrics(y_true.tolist(), y_pred.tolist(), d.num_classes, d.class_names)
        per_case = per_case_accuracy(y_true.tolist(), y_pred.tolist(), [d.case_ids[i] for i in order])
        out = self.output_dir / "validation"
        write_predictions_csv(out / "predictions.csv", [d.ids[i] for i in order], probs, d.class_names,
                              y_true.tolist())
        weights = (self.weights_from or "checkpoint_final.pth").removeprefix("checkpoint_").removesuffix(".pth")
        summary = {"fold": self.spec.fold, "epochs": self.epoch, "checkpoint": weights, **metrics, **per_case}
        write_json_atomic(summary, out / "summary.json")
        spread = per_case["per_case_accuracy"]
        self.logger.log(f"Final validation on {len(order)} images of {spread['num_cases']} case(s): accuracy "
                        f"{metrics['accuracy']:.4f}, balanced accuracy {metrics['balanced_accuracy']:.4f}, macro F1 "
                        f"{metrics['macro_f1']:.4f}; per case {spread['mean']:.4f} mean, {spread['min']:.4f} worst "
                        f"-> {out / 'summary.json'}")
