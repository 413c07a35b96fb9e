"""Fit the training schedule into a wall-clock budget, and keep it fitted while the machine's speed drifts.

Pure arithmetic on measured times and an injected clock, so every decision is testable without
training. The trainer (``trainers/pacing.py``) feeds it: a calibration (timed training and
validation steps on the real device, data loading included) picks epochs x iterations so training
plus the final validation end within the budget; after every epoch the measured epoch time re-fits
the number of remaining epochs (another process starting or stopping on the machine changes the
step time by 2x and more). The learning-rate schedule is re-fitted with it (``PolyLRSchedule.refit``),
so the poly decay still runs to its end.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from mednext_fw.durations import DurationError, format_duration, parse_duration  # noqa: F401 (re-exported)
from mednext_fw.errors import UserError

MIN_ITERS_PER_EPOCH = 10  # fewer makes per-epoch validation and checkpoints dominate
MIN_EPOCHS_WANTED = 20  # epochs are the re-fit granularity: shorter epochs when the budget is small
VAL_PER_TRAIN_ITER = 0.2  # nnU-Net's 50 validation batches per 250 training iterations
AIM_FRACTION = 0.985  # plan to end 1.5% early: the last epoch's rounding and jitter go into this
RECENT_EPOCHS = 3  # the epoch-time estimate is the mean of the last few (one slow epoch is noise)
DEFAULT_EPOCH_OVERHEAD_S = 1.0  # checkpoint + plot + log before the first epoch has been measured


class TimeBudgetError(UserError, ValueError):
    """The budget cannot hold even a minimal schedule."""


@dataclass
class StepTimes:
    """What the calibration measured (seconds)."""

    train_step: float  # one training iteration, data loading included
    val_step: float  # one validation batch
    final_validation: float  # the full-case prediction + evaluation after training
    epoch_overhead: float = DEFAULT_EPOCH_OVERHEAD_S  # checkpoint, plot and log per epoch

    def epoch(self, iters: int, val_iters: int) -> float:
        return iters * self.train_step + val_iters * self.val_step + self.epoch_overhead


@dataclass
class Schedule:
    num_epochs: int
    iters_per_epoch: int
    val_iters: int


def fit_schedule(available_s: float, times: StepTimes, limits: Schedule, done_epochs: int = 0,
                 fixed_iters: bool = False) -> Schedule:
    """Epochs x iterations that fill ``available_s`` (after the final validation), within ``limits``.

    Iterations per epoch: the limit, shortened so at least :data:`MIN_EPOCHS_WANTED` epochs fit
    (never below :data:`MIN_ITERS_PER_EPOCH`); validation batches keep nnU-Net's 1:5 ratio.
    ``fixed_iters`` (a resumed run) keeps the limit's iterations. ``done_epochs`` already ran.
    """
    val_limit = limits.val_iters
    if fixed_iters:
        iters, val = limits.iters_per_epoch, val_limit
    else:
        per_iter = times.train_step + min(val_limit / max(limits.iters_per_epoch, 1), VAL_PER_TRAIN_ITER) * \
            times.val_step
        per_epoch = (available_s - times.final_validation) / MIN_EPOCHS_WANTED - times.epoch_overhead
        iters = int(min(limits.iters_per_epoch, max(MIN_ITERS_PER_EPOCH, per_epoch / max(per_iter, 1e-9))))
        iters = max(1, min(iters, limits.iters_per_epoch))
        val = min(val_limit, max(1 if val_limit else 0, round(iters * VAL_PER_TRAIN_ITER)))
    epochs = int((available_s - times.final_validation) // times.epoch(iters, val))
    if epochs < 1:
        small = Schedule(1, min(MIN_ITERS_PER_EPOCH, iters), min(val, 2))
        need = times.final_validation + times.epoch(small.iters_per_epoch, small.val_iters)
        raise BudgetTooSmall(need, times, small)
    return Schedule(min(limits.num_epochs, done_epochs + epochs), iters, val)


class BudgetTooSmall(TimeBudgetError):
    def __init__(self, needed_s: float, times: StepTimes, smallest: Schedule):
        self.needed_s, self.times, self.smallest = needed_s, times, smallest
        super().__init__(f"needs {format_duration(needed_s)} more")


@dataclass
class TimeBudget:
    """A budget of ``total_s`` counted from construction, plus ``used_before_s`` of earlier sessions."""

    total_s: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    used_before_s: float = 0.0
    times: StepTimes | None = None
    schedule: Schedule | None = None
    epoch_seconds: list[float] = field(default_factory=list)  # this session's measured epoch cycles
    refits: int = 0

    def __post_init__(self) -> None:
        self._start = self.clock()

    def shift_start(self, seconds_earlier: float) -> None:
        """The session began ``seconds_earlier`` before construction (e.g. at the process start)."""
        self._start -= max(0.0, seconds_earlier)

    # ---------------------------------------------------------------- clock
    def elapsed(self) -> float:
        """Seconds spent on this training so far, earlier (resumed) sessions included."""
        return self.used_before_s + (self.clock() - self._start)

    def remaining(self) -> float:
        return self.total_s - self.elapsed()

    def aim_remaining(self) -> float:
        """Time left for training + final validation, keeping the planned reserve."""
        return self.total_s * AIM_FRACTION - self.elapsed()

    # ---------------------------------------------------------------- decisions
    def fit(self, times: StepTimes, limits: Schedule, done_epochs: int = 0, fixed_iters: bool = False,
            in_epoch_s: float = 0.0) -> Schedule:
        """First fit after the calibration. ``in_epoch_s``: time the current (unfinished) epoch already took."""
        self.times = times
        try:
            self.schedule = fit_schedule(self.aim_remaining() + in_epoch_s, times, limits, done_epochs, fixed_iters)
        except BudgetTooSmall as exc:
            minimum = (self.elapsed() - in_epoch_s + exc.needed_s) / AIM_FRACTION
            t, small = exc.times, exc.smallest
            raise TimeBudgetError(
                f"--time-budget {format_duration(self.total_s)} is too small: the minimum for this plan on this "
                f"machine is {format_duration(math.ceil(minimum))} (start-up and calibration "
                f"{format_duration(self.elapsed() - self.used_before_s - in_epoch_s)}"
                + (f", earlier sessions {format_duration(self.used_before_s)}" if self.used_before_s else "")
                + f", one epoch of {small.iters_per_epoch} iterations at a measured {t.train_step:.2f} s each "
                f"{format_duration(t.epoch(small.iters_per_epoch, small.val_iters))}, final validation "
                f"~{format_duration(t.final_validation)}). Give a larger budget, or plan smaller "
                f"(patch, network) for this machine.") from None
        return self.schedule

    def epoch_estimate(self) -> float:
        assert self.times is not None and self.schedule is not None
        if self.epoch_seconds:
            recent = self.epoch_seconds[-RECENT_EPOCHS:]
            return sum(recent) / len(recent)
        return self.times.epoch(self.schedule.iters_per_epoch, self.schedule.val_iters)

    def final_validation_estimate(self) -> float:
        """The calibrated final-validation time, scaled by how much slower (or faster) epochs now run
        than calibrated: a busier machine slows the prediction as much as the training."""
        assert self.times is not None and self.schedule is not None
        calibrated = self.times.epoch(self.schedule.iters_per_epoch, self.schedule.val_iters)
        return self.times.final_validation * self.epoch_estimate() / max(calibrated, 1e-9)

    def after_epoch(self, epoch_s: float, done_epochs: int, max_epochs: int) -> Schedule | None:
        """Record a finished epoch; return the re-fitted schedule when the epoch count changes."""
        assert self.times is not None and self.schedule is not None, "fit() first"
        self.epoch_seconds.append(float(epoch_s))
        left = self.aim_remaining() - self.final_validation_estimate()
        more = max(0, int(left // self.epoch_estimate()))
        total = min(max_epochs, done_epochs + more)
        if total == self.schedule.num_epochs:
            return None
        self.schedule = Schedule(total, self.schedule.iters_per_epoch, self.schedule.val_iters)
        self.refits += 1
        return self.schedule

    def predicted_total(self, done_epochs: int, in_epoch_s: float = 0.0) -> float:
        """Predicted elapsed seconds at the end of the run (training + final validation);
        ``in_epoch_s``: time the current, unfinished epoch already took."""
        assert self.times is not None and self.schedule is not None
        left_epochs = max(0, self.schedule.num_epochs - done_epochs)
        return self.elapsed() - in_epoch_s + left_epochs * self.epoch_estimate() + self.final_validation_estimate()

    # ---------------------------------------------------------------- persistence
    def state_dict(self) -> dict:
        return {"total_s": self.total_s, "used_s": self.elapsed(),
                "times": asdict(self.times) if self.times else None,
                "schedule": asdict(self.schedule) if self.schedule else None, "refits": self.refits}

    @staticmethod
    def used_from_state(state: dict | None) -> float:
        return float(state.get("used_s", 0.0)) if state else 0.0


def estimate_schedule_seconds(times: StepTimes, schedule: Schedule, done_epochs: int = 0) -> float:
    """Wall time of a fixed schedule (the estimate printed when no budget is given)."""
    left = max(0, schedule.num_epochs - done_epochs)
    return left * times.epoch(schedule.iters_per_epoch, schedule.val_iters) + times.final_validation
