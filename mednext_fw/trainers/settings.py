"""Run settings shared by every trainer; each is a CLI flag, never a subclass."""
from __future__ import annotations

from dataclasses import dataclass

from mednext_fw.errors import UsageError


@dataclass
class TrainingSettings:
    num_epochs: int = 1000
    iters_per_epoch: int = 250
    val_iters: int = 50
    lr: float = 1e-3
    weight_decay: float = 3e-5
    adam_eps: float = 1e-4
    grad_clip: float = 12.0
    ema_decay: float = 0.9  # ema = decay * ema + (1 - decay) * metric
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | fp16 | bf16 (see trainers.precision)
    seed: int | None = None
    num_workers: int | None = None  # augmentation processes; None = MEDNEXT_n_proc_DA or a CPU-based default
    threads: int | None = None  # torch threads in the training process; None = leave as set
    time_budget_s: float | None = None  # fit epochs x iterations (as upper limits) into this wall time
    max_nonfinite: int = 10  # consecutive NaN/Inf losses before giving up
    latest_every: int = 1  # write checkpoint_latest.pth every N epochs
    final_validation: bool = True
    final_validation_tta: bool = True  # mirroring test-time augmentation in the final validation
    # CASE.npz probabilities beside the final validation's label maps (for ensembling);
    # None: on when the plans hold more than one segmentation configuration
    final_validation_probabilities: bool | None = None
    channels_last: str = "auto"  # auto (on for CUDA) | on | off
    continue_training: bool = False
    progress_bar: bool = True

    def validate(self) -> None:
        for name in ("num_epochs", "iters_per_epoch", "latest_every", "max_nonfinite"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise UsageError(f"time_budget_s must be > 0 (got {self.time_budget_s})")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"threads must be >= 1 (got {self.threads})")
        if self.val_iters < 0:
            raise UsageError(f"val_iters must be >= 0 (got {self.val_iters})")
        if not 0 <= self.ema_decay < 1:
            raise UsageError(f"ema_decay must be in [0, 1) (got {self.ema_decay})")
        if self.channels_last not in ("auto", "on", "off"):
            raise UsageError(f"channels_last must be auto, on or off (got {self.channels_last})")
