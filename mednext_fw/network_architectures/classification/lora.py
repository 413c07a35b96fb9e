"""LoRA: ``y = W x + b + (alpha / r) * B(A(x))`` with A Kaiming-uniform and B zero at the start.

:func:`inject_lora` must run before the optimiser is built (the HoViT builder does it), otherwise
A and B are never optimised. ``LoRALinear`` keeps the wrapped layer's ``weight``/``bias`` names,
so a checkpoint of the model without LoRA loads into it (only ``lora_a``/``lora_b`` are new).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LoRALinear(nn.Linear):
    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float, bias: bool = True):
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        super().__init__(in_features, out_features, bias=bias)
        self.rank, self.alpha, self.scaling = rank, alpha, alpha / rank
        self.lora_a = nn.Linear(in_features, rank, bias=False)
        self.lora_b = nn.Linear(rank, out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_a.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_b.weight)

    @classmethod
    def wrap(cls, linear: nn.Linear, rank: int, alpha: float, freeze_base: bool = True) -> "LoRALinear":
        m = cls(linear.in_features, linear.out_features, rank, alpha, bias=linear.bias is not None)
        m.to(linear.weight.device)
        with torch.no_grad():
            m.weight.copy_(linear.weight)
            if linear.bias is not None:
                m.bias.copy_(linear.bias)
        if freeze_base:
            m.weight.requires_grad_(False)
            if m.bias is not None:
                m.bias.requires_grad_(False)
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias) + self.scaling * self.lora_b(self.lora_a(x))

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        out = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None).to(self.weight)
        out.weight.copy_(self.weight + self.scaling * (self.lora_b.weight @ self.lora_a.weight))
        if self.bias is not None:
            out.bias.copy_(self.bias)
        out.weight.requires_grad_(self.weight.requires_grad)
        return out


def _excluded(name: str, exclude: tuple[str, ...]) -> bool:
    return any(name == e or name.startswith(e + ".") for e in exclude)


def inject_lora(model: nn.Module, rank: int, alpha: float, exclude: tuple[str, ...] = ("head", "head_dist"),
                freeze_base: bool = True) -> list[str]:
    """Replace every ``nn.Linear`` outside the ``exclude`` sub-trees; returns the replaced names."""
    targets = [(name, m) for name, m in model.named_modules()
               if type(m) is nn.Linear and not _excluded(name, exclude)]
    for name, lin in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear.wrap(lin, rank, alpha, freeze_base))
    return [n for n, _ in targets]


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA update into a plain Linear, in place; returns ``model``."""
    targets = [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name, m in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, m.merged())
    return model
