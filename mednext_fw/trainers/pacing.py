"""The trainer's clock: calibration, the time budget's fits and re-fits, and honest estimates.

Calibration is the first steps of the first epoch this process runs (real steps, data loading
included; the first :data:`WARMUP_STEPS` pay for allocations and worker start-up and are not timed),
plus two timed validation batches and one timed inference tile. With ``--time-budget`` the
:class:`~mednext_fw.trainers.time_budget.TimeBudget` then fits epochs x iterations, and after every
epoch re-fits the epoch count to the measured epoch time. Without a budget the same calibration
prints what the fixed schedule will cost. Under DDP rank 0 decides and every rank follows
(a broadcast at the same points of the loop on all ranks).
"""
from __future__ import annotations

import datetime
import statistics
import time
from typing import TYPE_CHECKING, Callable

from mednext_fw.durations import format_duration
from mednext_fw.trainers.time_budget import (Schedule, StepTimes, TimeBudget, TimeBudgetError,
                                             estimate_schedule_seconds)

if TYPE_CHECKING:
    from mednext_fw.trainers.base import BaseTrainer

WARMUP_STEPS = 2
TIMED_STEPS = 4
CPU_WARN_SECONDS = 86400.0


class Pacer:
    def __init__(self, trainer: "BaseTrainer", budget_s: float | None, clock: Callable[[], float] = time.monotonic):
        self.trainer = trainer
        self.clock = clock
        self.budget = TimeBudget(budget_s, clock) if budget_s else None
        trainer.logger.budget_s = budget_s
        self.used_before_s = 0.0
        self.session_start = clock()
        s = trainer.settings
        self.limits = Schedule(s.num_epochs, s.iters_per_epoch, s.val_iters)  # caps for the budget
        self.resumed_iters: int | None = None
        self.times: StepTimes | None = None
        self._step_ends: list[float] = []
        self._epoch_start = self._cycle_start = None

    def count_from(self, started: float) -> None:
        """Count this session from ``started`` (a ``clock()`` reading before the trainer was built:
        ``mednext_train`` passes its own start, so importing torch and loading data count too)."""
        ago = max(0.0, self.session_start - started)
        self.session_start -= ago
        if self.budget is not None:
            self.budget.shift_start(ago)

    # ---------------------------------------------------------------- state
    def used_s(self) -> float:
        return self.used_before_s + self.clock() - self.session_start

    def state_dict(self) -> dict:
        return {"used_s": self.used_s(), "budget": self.budget.state_dict() if self.budget else None}

    def load_state_dict(self, state: dict | None) -> None:
        """Resume: the budget counts the time earlier sessions spent; their iterations per epoch are kept."""
        state = state or {}
        self.used_before_s = float(state.get("used_s", 0.0))
        if self.budget is not None:
            self.budget.used_before_s = self.used_before_s
            old = (state.get("budget") or {}).get("schedule")
            self.resumed_iters = int(old["iters_per_epoch"]) if old else None

    # ---------------------------------------------------------------- loop hooks
    def epoch_started(self) -> None:
        now = self.clock()
        self._epoch_start = now
        if self._cycle_start is None:
            self._cycle_start = now

    def step_done(self, iteration: int) -> None:
        """After training iteration ``iteration`` (0-based) of the current epoch."""
        if self.times is not None:
            return
        self._step_ends.append(self.clock())
        wanted = WARMUP_STEPS + TIMED_STEPS
        if len(self._step_ends) >= wanted or iteration + 1 >= self.trainer.settings.iters_per_epoch:
            self._calibrate()

    def epoch_done(self) -> None:
        now = self.clock()
        cycle, self._cycle_start = now - self._cycle_start, now
        t = self.trainer
        if self.budget is None or self.budget.schedule is None:
            return
        new = self.budget.after_epoch(cycle, t.epoch, self.limits.num_epochs) if t.dist.is_main else None
        new_total = t.dist.broadcast_object(new.num_epochs if new else None)
        if new_total is not None:
            old = t.settings.num_epochs
            self._apply(Schedule(new_total, t.settings.iters_per_epoch, t.settings.val_iters), t.epoch - 1)
            t.logger.log(f"Time budget re-fit: epochs take {self.budget.epoch_estimate():.1f} s (last {cycle:.1f} s); "
                         f"{old} -> {new_total} epochs")
        t.logger.log(f"Time budget: {format_duration(self.budget.elapsed())} of "
                     f"{format_duration(self.budget.total_s)} used; predicted end {self._clock_at(self._predicted())}")

    def predicted_total_s(self) -> float:
        """Predicted elapsed seconds at the end of training + final validation (NaN before calibration)."""
        if self.times is None:
            return float("nan")
        return self._predicted()

    def finished(self, final_validation_s: float | None) -> None:
        t = self.trainer
        total = self.used_s()
        msg = f"Wall time {format_duration(total)}"
        if self.times is not None and final_validation_s is not None:
            msg += (f"; final validation {format_duration(final_validation_s)} "
                    f"(estimated {format_duration(self.times.final_validation)})")
        if self.budget is not None:
            msg += f"; budget {format_duration(self.budget.total_s)} ({100 * (total / self.budget.total_s - 1):+.1f}%)"
        t.logger.log(msg)

    # ---------------------------------------------------------------- internals
    def _calibrate(self) -> None:
        t = self.trainer
        ends = [self._epoch_start] + self._step_ends
        steps = [b - a for a, b in zip(ends[:-1], ends[1:])]
        timed = steps[WARMUP_STEPS:] or steps[-1:]
        val_step = t.time_validation_batch() if t.settings.val_iters else 0.0
        final_s = t.estimate_final_validation_s() if t.settings.final_validation else 0.0
        self.times = StepTimes(statistics.median(timed), val_step, final_s)
        self.times = t.dist.broadcast_object(self.times)  # rank 0's measurement is everyone's
        if self.budget is None:
            self._report_fixed_schedule()
            return
        self.budget.used_before_s = self.used_before_s
        error, schedule, in_epoch = None, None, self.clock() - self._epoch_start
        if t.dist.is_main:
            try:
                limits = self.limits
                if self.resumed_iters:
                    limits = Schedule(limits.num_epochs, self.resumed_iters, limits.val_iters)
                schedule = self.budget.fit(self.times, limits, t.epoch, fixed_iters=self.resumed_iters is not None,
                                           in_epoch_s=in_epoch)
            except TimeBudgetError as exc:
                error = str(exc)
        error, schedule = t.dist.broadcast_object((error, schedule))
        if error:
            raise TimeBudgetError(error)
        if not t.dist.is_main:
            self.budget.times, self.budget.schedule = self.times, schedule
        self._apply(schedule, t.epoch)
        tm = self.times
        t.logger.log(
            f"Time budget {format_duration(self.budget.total_s)}"
            + (f" ({format_duration(self.used_before_s)} used by earlier sessions)" if self.used_before_s else "")
            + f": calibration measured {tm.train_step:.3f} s per training step (data loading included), "
            f"{tm.val_step:.3f} s per validation batch, final validation ~{format_duration(tm.final_validation)} "
            f"-> {schedule.num_epochs} epochs x {schedule.iters_per_epoch} iterations (+{schedule.val_iters} "
            f"validation); predicted end {self._clock_at(self.budget.predicted_total(t.epoch, in_epoch))}, budget ends "
            f"{self._clock_at(self.budget.total_s)}")

    def _apply(self, schedule: Schedule, lr_set_epoch: int) -> None:
        """Use ``schedule``; ``lr_set_epoch``: the epoch running (calibration) or just finished (re-fit),
        whose learning rate stays as it was."""
        t = self.trainer
        t.settings.num_epochs = schedule.num_epochs
        t.settings.iters_per_epoch = schedule.iters_per_epoch
        t.settings.val_iters = schedule.val_iters
        t.schedule.refit(lr_set_epoch, schedule.num_epochs)

    def _predicted(self) -> float:
        t = self.trainer
        if self.budget is not None and self.budget.schedule is not None:
            return self.budget.predicted_total(t.epoch)
        s = t.settings
        left = estimate_schedule_seconds(self.times, Schedule(s.num_epochs, s.iters_per_epoch, s.val_iters), t.epoch)
        return self.used_s() + left

    def _clock_at(self, elapsed_s: float) -> str:
        """Wall-clock time at which ``elapsed_s`` of this training will have passed."""
        at = datetime.datetime.now() + datetime.timedelta(seconds=elapsed_s - self.used_s())
        return at.strftime("%H:%M:%S") if elapsed_s - self.used_s() < 86400 else at.strftime("%Y-%m-%d %H:%M")

    def _report_fixed_schedule(self) -> None:
        t, tm, s = self.trainer, self.times, self.trainer.settings
        left = self._predicted() - self.used_s()
        t.logger.log(f"Estimated wall time of {s.num_epochs - t.epoch} epochs x {s.iters_per_epoch} iterations "
                     f"(+{s.val_iters} validation) and the final validation: {format_duration(left)} "
                     f"({tm.train_step:.3f} s per training step measured); "
                     f"predicted end {self._clock_at(self._predicted())}")
        if t.device.type == "cpu" and left > CPU_WARN_SECONDS:
            t.logger.log("WARNING: this schedule takes more than a day on this CPU. Give the time you have with "
                         "--time-budget (e.g. --time-budget 2h): epochs and iterations are then fitted to it.")
