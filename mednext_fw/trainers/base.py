"""Task-independent training machinery: the epoch loop and everything around it.

A concrete trainer supplies the parts (``build_network``, ``build_loss``, ``build_data``, how a
batch is split into inputs/targets, how validation outputs become a metric) and may replace the
optimiser or schedule. The loop, AMP, the NaN guard, gradient clipping, checkpoints and resume,
signals, logging, the progress plot and DDP live here once, for segmentation and classification alike;
the steps inside an epoch (training, validation, the timed batch) are in ``steps.py``, what a
checkpoint holds, resuming and validating saved weights in ``state.py``.
"""
from __future__ import annotations

import abc
import math
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from mednext_fw.io.atomic import sweep_temporaries
from mednext_fw.trainers.distributed import DistContext, init_distributed
from mednext_fw.trainers.guards import NonFiniteLossGuard, SignalCatcher
from mednext_fw.trainers.logger import TrainingLogger
from mednext_fw.trainers.optim import OptimizerConfig, build_adamw
from mednext_fw.trainers.pacing import Pacer
from mednext_fw.trainers.precision import Precision
from mednext_fw.trainers.schedules.poly import PolyLRSchedule
from mednext_fw.trainers.settings import TrainingSettings
from mednext_fw.trainers.state import CheckpointState
from mednext_fw.trainers.steps import EpochSteps

Callback = Callable[["BaseTrainer"], None]  # called with the trainer after every finished epoch


class BaseTrainer(CheckpointState, EpochSteps, abc.ABC):
    trainer_name = "BaseTrainer"
    metric_name = "pseudo Dice"

    def __init__(self, output_dir: Path, settings: TrainingSettings, callbacks: Sequence[Callback] = (),
                 dist_ctx: DistContext | None = None, device: torch.device | None = None):
        settings.validate()
        self.settings = settings
        self.output_dir = Path(output_dir)
        self.callbacks = list(callbacks)
        if dist_ctx is None:
            dist_ctx, device = init_distributed(settings.device)
        self.dist = dist_ctx
        self.device = device
        self.logger = TrainingLogger(self.output_dir / "training_log.txt", enabled=self.dist.is_main,
                                     metric_name=self.metric_name)
        self.precision = Precision(self.device, settings.precision)
        self.guard = NonFiniteLossGuard(settings.max_nonfinite, warn=self._warn)
        self.epoch = 0  # number of finished epochs
        self.ema: float | None = None
        self.best_ema: float | None = None
        self.steps_per_rank: list[int] = []
        self.epochs_run = 0  # epochs trained by this process (0 when --continue finds a finished run)
        self._signals: SignalCatcher | None = None
        self._is_set_up = False
        self._last_plot = (0.0, 0.0)  # (end time, duration) of the last progress plot
        if settings.threads is not None:
            from mednext_fw.devices import configure_threads

            configure_threads(settings.threads)
        self.pacer = Pacer(self, settings.time_budget_s)  # tests swap in one with a fake clock

    # ------------------------------------------------------------------ parts to supply
    @classmethod
    @abc.abstractmethod
    def from_cli(cls, dataset: str, configuration: str, fold: str, trainer_name: str, options: dict[str, Any],
                 settings: TrainingSettings) -> "BaseTrainer":
        """Build the trainer from ``mednext_train`` arguments (``options``: the plan-override flags)."""

    def build_network(self) -> nn.Module:
        """The bare network, rebuilt from :meth:`network_builder` through the registry (the base moves
        it to the device and wraps it for DDP); a trainer with an unregistered network overrides this."""
        from mednext_fw.network_architectures.registry import build_network

        b = self.network_builder()
        return build_network(b["name"], **b["kwargs"])

    @abc.abstractmethod
    def build_loss(self) -> nn.Module:
        """Called as ``loss(output, target)`` by :meth:`compute_loss`."""

    @abc.abstractmethod
    def build_data(self) -> tuple[Iterator, Iterator]:
        """Infinite iterators over training and validation batches."""

    @abc.abstractmethod
    def split_batch(self, batch: Any) -> tuple[Any, Any]:
        """A loader batch -> (network input on the device, target on the device)."""

    @abc.abstractmethod
    def validation_counts(self, output: Any, target: Any) -> torch.Tensor:
        """Additive statistics of one validation batch (summed over batches and ranks)."""

    @abc.abstractmethod
    def metric_from_counts(self, counts: torch.Tensor) -> tuple[float, list[float]]:
        """(mean metric for the EMA / best checkpoint, per-class values for the log)."""

    @abc.abstractmethod
    def network_builder(self) -> dict[str, Any]:
        """``{"name", "kwargs"}`` enough to rebuild the network from the registry."""

    def checkpoint_extras(self) -> dict[str, Any]:
        return {}

    def build_optimizer(self, params) -> torch.optim.Optimizer:
        s = self.settings
        return build_adamw(params, OptimizerConfig(lr=s.lr, weight_decay=s.weight_decay, eps=s.adam_eps))

    def build_schedule(self, optimizer: torch.optim.Optimizer) -> PolyLRSchedule:
        return PolyLRSchedule(optimizer, self.settings.lr, self.settings.num_epochs)

    def compute_loss(self, output: Any, target: Any) -> torch.Tensor:
        return self.loss(output, target)

    def memory_format(self) -> torch.memory_format | None:
        return None

    def after_network_built(self, network: nn.Module) -> None:
        """Hook for weight initialisation from other runs (UpKern, pretrained weights)."""

    def final_validation(self) -> None:
        """Hook run after training (full-case prediction + evaluation for segmentation)."""

    def estimate_final_validation_s(self) -> float:
        """Predicted seconds of :meth:`final_validation` (measured on the device; asked by the calibration)."""
        return 0.0

    def close_data(self) -> None:
        """Hook to stop loader worker processes."""

    # ------------------------------------------------------------------ setup / resume
    def setup(self) -> None:
        seed = self.settings.seed
        if seed is not None:
            self._seed_everything(seed + self.dist.rank)
        network = self.build_network().to(self.device)
        fmt = self.memory_format()
        if fmt is not None:
            network = network.to(memory_format=fmt)
        self.network = network
        if not self.settings.continue_training:
            self.after_network_built(network)
        self.optimizer = self.build_optimizer(network.parameters())
        self.schedule = self.build_schedule(self.optimizer)
        self.loss = self.build_loss()
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model: nn.Module = nn.parallel.DistributedDataParallel(network, device_ids=ids)
        else:
            self.model = network
        self._is_set_up = True

    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    # ------------------------------------------------------------------ the loop
    def sweep_leftovers(self) -> None:
        if self.dist.is_main:  # what a killed earlier run left half-written (other ranks write nothing here)
            sweep_temporaries(self.output_dir)
            sweep_temporaries(self.output_dir.parent, recursive=False)

    def run(self) -> None:
        self.sweep_leftovers()
        if not self._is_set_up:
            self.setup()
        if self.settings.continue_training:
            used = self.resume()
            if used is None:
                self.logger.log(f"--continue: no checkpoint in {self.output_dir}, starting from scratch")
            else:
                self.logger.log(f"Resumed from {used.name} at epoch {self.epoch}")
        self.train_iter, self.val_iter = self.build_data()
        try:
            with SignalCatcher() as signals:
                self._signals = signals
                try:
                    while self.epoch < self.settings.num_epochs:
                        self.run_epoch()
                except KeyboardInterrupt:  # StopRequested included
                    self.save_checkpoint("checkpoint_latest.pth")
                    self.logger.log(f"Interrupted during epoch {self.epoch + 1}: checkpoint_latest.pth written "
                                    f"(resume with --continue)")
                    raise
                # Final last, so that it is the newest file --continue resumes from. Resumed from a finished
                # run's final checkpoint and trained no further: re-saving it would only make its
                # validation predictions look stale (they are kept for the same file).
                if self.epochs_run > 0 or self.weights_from != "checkpoint_final.pth":
                    self.save_checkpoint("checkpoint_latest.pth")
                    self.save_checkpoint("checkpoint_final.pth")
                    self.weights_from = "checkpoint_final.pth"
        finally:
            self._signals = None
            self.close_data()
        self.logger.log(f"Training finished after {self.epoch} epochs")
        took = None
        try:
            if self.settings.final_validation:
                start = time.monotonic()
                self.final_validation()
                took = time.monotonic() - start
            self.pacer.finished(took)
        finally:
            self.logger.close()

    def run_epoch(self) -> None:
        s, e = self.settings, self.epoch
        lr = self.schedule.step(e)
        start = time.time()
        self.pacer.epoch_started()
        self.logger.log(f"Epoch {e + 1}/{s.num_epochs}  lr {lr:.6g}")
        train_loss, steps = self._train_epoch(e)
        val_loss, counts = self._validate_epoch(e)
        metric, per_class = self.metric_from_counts(counts) if counts is not None else (float("nan"), [])
        if not math.isnan(metric):
            self.ema = metric if self.ema is None else s.ema_decay * self.ema + (1 - s.ema_decay) * metric
        self.steps_per_rank = self.dist.all_gather_int(steps)
        self.epoch += 1
        self.epochs_run += 1
        elapsed = time.time() - start
        per_class_txt = ", ".join(f"{v:.4f}" for v in per_class)
        self.logger.log(f"Epoch {e + 1}: train loss {train_loss:.4f}  val loss {val_loss:.4f}  "
                        f"{self.metric_name} [{per_class_txt}]  EMA {self.ema if self.ema is not None else float('nan'):.4f}  "
                        f"time {elapsed:.1f}s  optimizer steps per rank {self.steps_per_rank}")
        self.pacer.epoch_done()  # may re-fit the number of epochs to the time budget
        self.logger.record(train_loss=train_loss, val_loss=val_loss, metric=metric,
                           ema_metric=self.ema if self.ema is not None else float("nan"), lr=lr, epoch_time=elapsed,
                           wall_time=self.pacer.used_s(), predicted_end=self.pacer.predicted_total_s())
        if self.ema is not None and (self.best_ema is None or self.ema > self.best_ema):
            self.best_ema = self.ema
            self.save_checkpoint("checkpoint_best.pth")
            self.logger.log(f"New best EMA {self.metric_name}: {self.ema:.4f} -> checkpoint_best.pth")
        if self.epoch % s.latest_every == 0 or self.epoch == s.num_epochs:
            self.save_checkpoint("checkpoint_latest.pth")
        self._plot(final=self.epoch >= s.num_epochs)
        for callback in self.callbacks:
            callback(self)

    def _plot(self, final: bool = False) -> None:
        """progress.png, at most ~10% of the time: under load one plot took seconds, an epoch of a small
        CPU plan tens of seconds. The last epoch is always drawn."""
        now = time.monotonic()
        if not final and now - self._last_plot[0] < 10 * self._last_plot[1]:
            return
        self.logger.plot(self.output_dir / "progress.png")
        self._last_plot = (time.monotonic(), time.monotonic() - now)
