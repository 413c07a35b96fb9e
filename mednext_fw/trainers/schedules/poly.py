"""Polynomial decay ``lr = lr0 * (1 - epoch / max_epochs) ** exponent``, set once per epoch."""
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

    def lr_at(self, epoch: int) -> float:
        frac = min(max(epoch, 0), self.max_epochs) / self.max_epochs
        return self.initial_lr * (1.0 - frac) ** self.exponent

    def step(self, epoch: int) -> float:
        """Set the learning rate for ``epoch`` (0-based) and return it."""
        self.epoch = epoch
        lr = self.lr_at(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr, "max_epochs": self.max_epochs, "exponent": self.exponent,
                "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # max_epochs is kept from the constructor: resuming with a longer --epochs stretches the decay.
        self.initial_lr = state["initial_lr"]
        self.exponent = state["exponent"]
        self.epoch = state["epoch"]
