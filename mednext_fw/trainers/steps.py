"""The trainer's steps: one optimiser step, an epoch of them, an epoch of validation, a timed batch.

A mixin of ``BaseTrainer``, kept apart so the loop around it (``base.py``: set-up, checkpoints,
resume, epochs, plots) reads on its own. It uses what the base sets up: ``model``/``network``,
``optimizer``, ``precision``, ``guard``, ``pacer``, ``dist``, ``settings``, the data iterators and
the trainer's parts (``split_batch``, ``compute_loss``, ``validation_counts``). A trainer that needs
more per step (e.g. the classifier's schedules) overrides ``train_step`` and calls this one.
"""
from __future__ import annotations

import math
import time
from typing import Any

import torch
from tqdm import tqdm


class EpochSteps:
    @torch.no_grad()
    def time_validation_batch(self) -> float:
        """Seconds of one validation batch, data loading included (a first, untimed one warms up)."""
        self.model.eval()
        took = 0.0
        for _ in range(2):
            start = time.perf_counter()
            inputs, target = self.split_batch(next(self.val_iter))
            with self.precision.autocast():
                output = self.model(inputs)
                self.compute_loss(output, target)
            self.validation_counts(output, target).sum().item()  # waits for the device
            took = time.perf_counter() - start
        self.model.train()
        return took

    def _poll_signals(self) -> None:
        if self._signals is not None:
            self._signals.raise_if_requested()

    def _train_epoch(self, epoch: int) -> tuple[float, int]:
        self.model.train()
        total, count, steps, it = 0.0, 0, 0, 0
        bar = tqdm(total=self.settings.iters_per_epoch, desc=f"epoch {epoch + 1} train", leave=False,
                   disable=not (self.dist.is_main and self.settings.progress_bar))
        while it < self.settings.iters_per_epoch:  # the calibration may change the count mid-epoch
            self._poll_signals()
            value, stepped = self.train_step(next(self.train_iter), f"(epoch {epoch + 1}, iteration {it + 1})")
            if stepped:
                steps += 1
                total += value
                count += 1
                bar.set_postfix(loss=f"{value:.4f}")
            self.pacer.step_done(it)
            it += 1
            bar.total = self.settings.iters_per_epoch
            bar.update()
        bar.close()
        sums = self.dist.all_reduce_sum(torch.tensor([total, float(count)], dtype=torch.float64,
                                                     device=self._comm_device()))
        return (float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")), steps

    def train_step(self, batch: Any, where: str = "") -> tuple[float, bool]:
        inputs, target = self.split_batch(batch)
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():
            output = self.model(inputs)
            loss = self.compute_loss(output, target)
        value = self._agreed_loss_value(loss.detach())
        if not self.guard.step_ok(value, where):
            return value, False
        scaler = self.precision.scaler
        scaler.scale(loss).backward()
        scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.settings.grad_clip)
        scaler.step(self.optimizer)
        scaler.update()
        return value, True

    def _agreed_loss_value(self, loss: torch.Tensor) -> float:
        """The local loss, but NaN on every rank if any rank's loss is not finite (ranks must skip together)."""
        value = float(loss.float().item())
        if self.dist.enabled:
            bad = torch.tensor([0.0 if math.isfinite(value) else 1.0], device=self._comm_device())
            if self.dist.all_reduce_sum(bad).item() > 0:
                return float("nan")
        return value

    @torch.no_grad()
    def _validate_epoch(self, epoch: int) -> tuple[float, torch.Tensor | None]:
        if self.settings.val_iters == 0:
            return float("nan"), None
        self.model.eval()
        total, count, counts = 0.0, 0, None
        bar = tqdm(range(self.settings.val_iters), desc=f"epoch {epoch + 1} val", leave=False,
                   disable=not (self.dist.is_main and self.settings.progress_bar))
        for _ in bar:
            self._poll_signals()
            inputs, target = self.split_batch(next(self.val_iter))
            with self.precision.autocast():
                output = self.model(inputs)
                loss = self.compute_loss(output, target)
            if math.isfinite(loss.item()):
                total += float(loss.item())
                count += 1
            c = self.validation_counts(output, target).to(torch.float64)
            counts = c if counts is None else counts + c
        comm = self._comm_device()
        sums = self.dist.all_reduce_sum(torch.tensor([total, float(count)], dtype=torch.float64, device=comm))
        counts = self.dist.all_reduce_sum(counts.to(comm))
        return (float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")), counts.cpu()

    def _comm_device(self) -> torch.device:
        # gloo reduces CPU tensors; NCCL needs them on the GPU
        return self.device if (self.dist.enabled and self.device.type == "cuda") else torch.device("cpu")

    def _warn(self, message: str) -> None:
        self.logger.log(f"WARNING: {message}")
