import os
import signal

import pytest

from mednext_fw.trainers.guards import NonFiniteLossGuard, SignalCatcher, StopRequested, TrainingDivergedError


def test_guard_skips_then_stops():
    msgs = []
    g = NonFiniteLossGuard(max_consecutive=3, warn=msgs.append)
    assert g.step_ok(1.0)
    assert not g.step_ok(float("nan"))
    assert not g.step_ok(float("inf"))
    assert g.step_ok(0.5)  # a finite loss resets the streak
    assert not g.step_ok(float("nan"))
    assert not g.step_ok(float("nan"))
    with pytest.raises(TrainingDivergedError, match="3 consecutive"):
        g.step_ok(float("nan"), "(epoch 1)")
    assert g.total_skipped == 5 and len(msgs) == 5


def test_signal_is_deferred_to_the_poll():
    before = {s: signal.getsignal(s) for s in SignalCatcher.SIGNALS}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a test runner may have it ignored; this test needs it caught
    try:
        with SignalCatcher() as sig:
            os.kill(os.getpid(), signal.SIGTERM)
            assert sig.requested == signal.SIGTERM
            with pytest.raises(StopRequested):
                sig.raise_if_requested()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is before[signal.SIGINT]  # restored, whatever it was
    finally:
        signal.signal(signal.SIGTERM, before[signal.SIGTERM])


def test_an_ignored_signal_stays_ignored():
    """``nohup`` / a background job starts with SIGINT ignored: the catcher must not start catching it."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with SignalCatcher() as sig:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)  # ignored: nothing is requested, nothing raised
            assert sig.requested is None
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
