"""Polynomial decay ``lr = lr0 * (1 - progress) ** exponent``, set once per epoch.

``progress`` is ``epoch / max_epochs`` until a time budget re-fits the run length
(:meth:`PolyLRSchedule.refit`). A longer run then continues linearly from where the progress stands
to 1 at the new last epoch (no jump up in lr); a shorter one follows ``epoch / new_max_epochs``. Either
way the progress never decreases and the last epoch is the decay's last step.
"""
from __future__ import annotations

from typing import Any

import torch


class PolyLRSchedule:
    def __init__(self, optimizer: torch.optim.Optimizer, initial_lr: float, max_epochs: int, exponent: float = 0.9):
        if max_epochs < 1:
            raise ValueError("max_epochs must be >= 1")
        self.optimizer = optimizer
        self.initial_lr = initial_lr
        self.max_epochs = max_epochs
        self.exponent = exponent
        self.epoch = 0
        self.anchor: tuple[int, float] | None = None  # (epoch, progress) of the last re-fit

    def progress_at(self, epoch: int) -> float:
        plain = min(max(epoch, 0), self.max_epochs) / self.max_epochs
        if self.anchor is None:
            return plain
        a_epoch, a_prog = self.anchor
        if epoch <= a_epoch:
            return max(a_prog, plain)
        span = max(self.max_epochs - a_epoch, 1)
        # A longer run continues smoothly from the anchor; a shorter one follows the plain decay of the new
        # length (a small step down in lr), so repeated shortening never leaves the last epochs at a high lr.
        return max(plain, min(1.0, a_prog + (epoch - a_epoch) * (1.0 - a_prog) / span))

    def lr_at(self, epoch: int) -> float:
        return self.initial_lr * (1.0 - self.progress_at(epoch)) ** self.exponent

    def refit(self, epoch: int, new_max_epochs: int) -> None:
        """The run now ends after ``new_max_epochs`` epochs. ``epoch`` (0-based) is the last one whose lr
        is already set (running or finished); it keeps its progress, the following epochs continue from it."""
        if new_max_epochs == self.max_epochs:
            return
        self.anchor = (int(epoch), self.progress_at(epoch))
        self.max_epochs = max(int(new_max_epochs), int(epoch) + 1)

    def step(self, epoch: int) -> float:
        """Set the learning rate for ``epoch`` (0-based) and return it."""
        self.epoch = epoch
        lr = self.lr_at(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr, "max_epochs": self.max_epochs, "exponent": self.exponent,
                "epoch": self.epoch, "anchor": list(self.anchor) if self.anchor else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Without a re-fit, max_epochs is kept from the constructor: resuming with a longer --epochs
        # stretches the decay. A re-fitted (time-budget) run restores its whole progress mapping.
        self.initial_lr = state["initial_lr"]
        self.exponent = state["exponent"]
        self.epoch = state["epoch"]
        if state.get("anchor"):
            self.anchor = (int(state["anchor"][0]), float(state["anchor"][1]))
            self.max_epochs = int(state["max_epochs"])
