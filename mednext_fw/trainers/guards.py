"""Run guards: a non-finite-loss watchdog and a SIGINT/SIGTERM catcher.

Both are independent of what is trained, so the segmentation and the classification trainers share them.
"""
from __future__ import annotations

import math
import signal
import threading
import warnings
from typing import Callable

from mednext_fw.errors import UserError


class TrainingDivergedError(UserError, RuntimeError):
    """Raised after too many consecutive non-finite losses: the run will not recover by itself."""


class NonFiniteLossGuard:
    """Tell the trainer whether to skip an optimiser step; give up after ``max_consecutive`` bad steps.

    A single NaN/Inf (e.g. an fp16 overflow in one batch) is skipped with a warning. A streak means the
    weights or the data are broken, and training on would only waste compute.
    """

    def __init__(self, max_consecutive: int = 10, warn: Callable[[str], None] | None = None):
        if max_consecutive < 1:
            raise ValueError("max_consecutive must be >= 1")
        self.max_consecutive = max_consecutive
        self.consecutive = 0
        self.total_skipped = 0
        self._warn = warn or (lambda msg: warnings.warn(msg, RuntimeWarning, stacklevel=3))

    def step_ok(self, loss_value: float, where: str = "") -> bool:
        if math.isfinite(loss_value):
            self.consecutive = 0
            return True
        self.consecutive += 1
        self.total_skipped += 1
        self._warn(
            f"non-finite loss ({loss_value}) {where}: optimiser step skipped "
            f"({self.consecutive}/{self.max_consecutive} in a row)"
        )
        if self.consecutive >= self.max_consecutive:
            raise TrainingDivergedError(
                f"The loss was NaN/Inf for {self.consecutive} consecutive iterations {where}. Training stopped. "
                "Likely causes: learning rate too high, fp16 overflow (try --precision bf16 or fp32), or "
                "corrupt input arrays (check the preprocessed data for NaN). checkpoint_latest.pth holds the "
                "last finite state."
            )
        return False


class StopRequested(KeyboardInterrupt):
    """Raised at an iteration boundary after SIGINT/SIGTERM, so the trainer can save and exit."""


class SignalCatcher:
    """Context manager: the first SIGINT/SIGTERM sets ``requested``; a second one interrupts at once.

    The trainer polls :meth:`raise_if_requested` between iterations, so the checkpoint it writes never
    captures a half-applied optimiser step. Outside the main thread signals cannot be caught and the
    catcher does nothing. A signal the process was started ignoring (``nohup``, a background job's
    SIGINT) stays ignored, as the shell asked.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame):
        if self.requested is not None:
            raise KeyboardInterrupt(f"second signal {signal.Signals(signum).name}")
        self.requested = signum

    def raise_if_requested(self) -> None:
        if self.requested is not None:
            raise StopRequested(f"received {signal.Signals(self.requested).name}")

    def __enter__(self) -> "SignalCatcher":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
