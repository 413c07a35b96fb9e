"""The uniform classifier interface (see the package docstring) and its defaults."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

# Parameters whose name contains one of these never get weight decay.
_NO_DECAY_MARKERS = ("bias", "norm", "bn", "gate_logits", "attention_biases", "gamma")


class ClassifierBase(nn.Module):
    """Defaults for the trainer-facing hooks; subclasses override what they need."""

    gate_lr_mult: float = 1.0

    def auxiliary_loss(self) -> torch.Tensor:
        p = next(self.parameters(), None)
        return torch.zeros((), device=p.device if p is not None else "cpu")

    def on_train_step(self, step: int, total_steps: int) -> None:
        return None

    def param_groups(self, base_lr: float, weight_decay: float) -> list[dict]:
        return split_param_groups(self.named_parameters(), base_lr, weight_decay, self.gate_lr_mult)


def split_param_groups(named: Iterable[tuple[str, nn.Parameter]], base_lr: float, weight_decay: float,
                       gate_lr_mult: float = 1.0) -> list[dict]:
    decay, no_decay, gates = [], [], []
    for name, p in named:
        if not p.requires_grad:
            continue
        if "gate_logits" in name:
            gates.append(p)
        elif p.ndim <= 1 or any(m in name for m in _NO_DECAY_MARKERS):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [
        {"params": decay, "lr": base_lr, "weight_decay": weight_decay, "name": "decay"},
        {"params": no_decay, "lr": base_lr, "weight_decay": 0.0, "name": "no_decay"},
        {"params": gates, "lr": base_lr * gate_lr_mult, "weight_decay": 0.0, "name": "gates"},
    ]
    return [g for g in groups if g["params"]]


def auxiliary_loss(model: nn.Module) -> torch.Tensor | None:
    """The model's auxiliary loss, or None for modules that do not follow the convention."""
    model = getattr(model, "module", model)  # unwrap DDP
    fn = getattr(model, "auxiliary_loss", None)
    return fn() if callable(fn) else None


def on_train_step(model: nn.Module, step: int, total_steps: int) -> None:
    model = getattr(model, "module", model)
    fn = getattr(model, "on_train_step", None)
    if callable(fn):
        fn(step, total_steps)


def param_groups(model: nn.Module, base_lr: float, weight_decay: float) -> list[dict]:
    model = getattr(model, "module", model)
    fn = getattr(model, "param_groups", None)
    if callable(fn):
        return fn(base_lr, weight_decay)
    return split_param_groups(model.named_parameters(), base_lr, weight_decay)


def count_parameters(model: nn.Module, trainable_only: bool = False, exclude: tuple[str, ...] = ()) -> int:
    """Number of parameter elements, optionally skipping names containing any of ``exclude``."""
    return sum(p.numel() for n, p in model.named_parameters()
               if (p.requires_grad or not trainable_only) and not any(e in n for e in exclude))
