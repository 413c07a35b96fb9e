"""Mixed precision: which autocast dtype to use and whether a GradScaler is needed.

CUDA defaults to fp16 autocast with a GradScaler (the MedNeXt reference). bf16 needs no scaler. On
CPU the default is fp32: bf16 autocast only pays off on CPUs with native bf16 units, so it is opt-in
(``--precision bf16``) rather than guessed.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch

from mednext_fw.errors import UsageError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


class Precision:
    def __init__(self, device: torch.device, mode: str = "auto"):
        if mode not in PRECISIONS:
            raise UsageError(f"unknown precision '{mode}' (choose {', '.join(PRECISIONS)})")
        if mode == "auto":
            mode = "fp16" if device.type == "cuda" else "fp32"
        if mode == "fp16" and device.type == "cpu":
            raise UsageError("fp16 autocast is not supported on CPU; use --precision bf16 or fp32")
        self.device = device
        self.mode = mode
        self.dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[mode]
        # The scaler only matters for fp16; a disabled scaler is a transparent pass-through.
        self.scaler = torch.amp.GradScaler(device.type if device.type != "mps" else "cpu",
                                           enabled=(mode == "fp16" and device.type == "cuda"))

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def state_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
