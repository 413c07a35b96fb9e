"""Optimiser factory with the MedNeXt reference settings (AdamW, one parameter group)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class OptimizerConfig:
    lr: float = 1e-3
    weight_decay: float = 3e-5
    eps: float = 1e-4  # the reference raises eps from 1e-8: smaller values gave NaNs under fp16


def build_adamw(params, cfg: OptimizerConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, eps=cfg.eps)
