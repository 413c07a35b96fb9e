"""Calibration and re-fitting with an injected clock: no training, every decision checked exactly."""
import math

import pytest

from mednext_fw.durations import format_duration

from mednext_fw.trainers.time_budget import (AIM_FRACTION, MIN_ITERS_PER_EPOCH, Schedule, StepTimes, TimeBudget,
                                             TimeBudgetError, estimate_schedule_seconds, fit_schedule)

LIMITS = Schedule(1000, 250, 50)


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def simulate(budget: TimeBudget, clock: FakeClock, times: StepTimes, slowdown, final_s: float) -> tuple[int, float]:
    """Run the fitted schedule: epoch ``e`` takes the planned epoch time x ``slowdown(e)``; return
    (epochs run, total elapsed including the final validation)."""
    sched = budget.schedule
    epoch = 0
    while epoch < budget.schedule.num_epochs:
        took = times.epoch(sched.iters_per_epoch, sched.val_iters) * slowdown(epoch)
        clock.advance(took)
        epoch += 1
        budget.after_epoch(took, epoch, LIMITS.num_epochs)
    clock.advance(final_s * slowdown(epoch - 1))  # the final validation runs at the machine's speed too
    return epoch, budget.elapsed()


def test_first_fit_fills_the_budget_with_at_least_20_epochs():
    times = StepTimes(train_step=0.3, val_step=0.1, final_validation=20.0, epoch_overhead=1.0)
    s = fit_schedule(600.0, times, LIMITS)
    # 580 s after the final validation over 20 epochs = 29 s, minus 1 s overhead, at 0.32 s per iteration
    # with its share of validation -> 87 iterations (+17 validation batches)
    assert s.iters_per_epoch == 87 and s.val_iters == 17
    used = s.num_epochs * times.epoch(s.iters_per_epoch, s.val_iters) + times.final_validation
    assert 0.95 * 600 <= used <= 600 and s.num_epochs >= 20
    # a long budget keeps the recipe's 250 iterations and is capped by its 1000 epochs
    assert fit_schedule(10 * 86400, times, LIMITS) == Schedule(1000, 250, 50)
    long = fit_schedule(3 * 3600, times, LIMITS)
    assert long.iters_per_epoch == 250 and 100 < long.num_epochs < 1000
    # a small budget keeps at least MIN_ITERS_PER_EPOCH iterations per epoch
    assert fit_schedule(60, times, LIMITS).iters_per_epoch == MIN_ITERS_PER_EPOCH


@pytest.mark.parametrize("slowdown,direction", [(2.0, "up"), (0.5, "down")])
def test_drift_is_refitted_and_the_run_ends_on_budget(slowdown, direction):
    clock = FakeClock()
    budget = TimeBudget(600.0, clock)
    times = StepTimes(0.3, 0.1, 20.0, 1.0)
    clock.advance(10.0)  # start-up and calibration
    first = budget.fit(times, LIMITS)
    epochs, total = simulate(budget, clock, times, lambda e: 1.0 if e < 5 else slowdown, 20.0)
    assert budget.refits >= 1
    assert (epochs < first.num_epochs) if direction == "up" else (epochs > first.num_epochs)
    assert 0.9 * 600 <= total <= 600  # within the budget, and not far below it
    # without the re-fit, the drift would have missed the budget by a wide margin
    naive = 10 + 5 * times.epoch(first.iters_per_epoch, first.val_iters) + \
        (first.num_epochs - 5) * times.epoch(first.iters_per_epoch, first.val_iters) * slowdown + 20
    assert abs(naive - 600) > 0.3 * 600


def test_noisy_epochs_do_not_overshoot():
    clock = FakeClock()
    budget = TimeBudget(900.0, clock)
    times = StepTimes(0.5, 0.2, 30.0, 2.0)
    budget.fit(times, LIMITS)
    pattern = [1.0, 1.6, 0.8, 1.3, 0.9, 2.2, 1.0]
    _, total = simulate(budget, clock, times, lambda e: pattern[e % len(pattern)], 30.0)
    assert 0.85 * 900 <= total <= 1.02 * 900


def test_resume_counts_the_time_earlier_sessions_used():
    times = StepTimes(0.3, 0.1, 20.0, 1.0)
    clock = FakeClock()
    first = TimeBudget(600.0, clock)
    sched = first.fit(times, LIMITS)
    for e in range(1, 9):  # 8 epochs, then the process is killed
        clock.advance(times.epoch(sched.iters_per_epoch, sched.val_iters))
        first.after_epoch(times.epoch(sched.iters_per_epoch, sched.val_iters), e, 1000)
    state = first.state_dict()
    assert state["used_s"] == pytest.approx(8 * times.epoch(sched.iters_per_epoch, sched.val_iters))

    clock2 = FakeClock(5.0)  # a new process, a new clock
    second = TimeBudget(600.0, clock2, used_before_s=TimeBudget.used_from_state(state))
    assert second.remaining() == pytest.approx(600 - state["used_s"])
    limits = Schedule(1000, sched.iters_per_epoch, sched.val_iters)
    resumed = second.fit(times, limits, done_epochs=8, fixed_iters=True)
    assert resumed.iters_per_epoch == sched.iters_per_epoch  # the epochs stay comparable
    assert resumed.num_epochs == pytest.approx(sched.num_epochs, abs=1)  # same plan, counted across sessions
    epochs, total = 8, second.elapsed()
    while epochs < second.schedule.num_epochs:
        clock2.advance(times.epoch(resumed.iters_per_epoch, resumed.val_iters))
        epochs += 1
        second.after_epoch(times.epoch(resumed.iters_per_epoch, resumed.val_iters), epochs, 1000)
    clock2.advance(20.0)
    assert 0.9 * 600 <= second.elapsed() <= 600


def test_budget_too_small_says_the_minimum():
    clock = FakeClock()
    budget = TimeBudget(30.0, clock)
    clock.advance(8.0)  # start-up and calibration already took 8 s
    times = StepTimes(train_step=1.5, val_step=0.5, final_validation=12.0, epoch_overhead=1.0)
    with pytest.raises(TimeBudgetError) as info:
        budget.fit(times, LIMITS)
    msg = str(info.value)
    # minimum = (8 s so far + 10 iterations x 1.5 s + 2 validation batches x 0.5 s + 1 s overhead + 12 s) / aim
    minimum = (8 + 15 + 1 + 1 + 12) / AIM_FRACTION
    assert "too small" in msg
    assert f"minimum for this plan on this machine is {format_duration(math.ceil(minimum))}" in msg
    assert "1.50 s each" in msg and "final validation ~12s" in msg
    # that minimum is indeed enough
    clock2 = FakeClock()
    ok = TimeBudget(minimum + 1, clock2)
    clock2.advance(8.0)
    assert ok.fit(times, LIMITS).num_epochs == 1


def test_estimate_of_a_fixed_schedule():
    times = StepTimes(1.0, 0.5, 100.0, 2.0)
    # 1000 x (250 + 25 + 2) + 100
    assert estimate_schedule_seconds(times, Schedule(1000, 250, 50)) == 1000 * (250 + 25 + 2) + 100
    assert estimate_schedule_seconds(times, Schedule(10, 250, 50), done_epochs=10) == 100
