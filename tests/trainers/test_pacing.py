"""The time budget inside the real trainer (synthetic data), with an injected clock: calibration, re-fit on
drift, the learning rate reaching its end, resume counting earlier sessions, a too-small budget, DDP."""
import os

import pytest
import torch
import torch.multiprocessing as mp

from mednext_fw.durations import format_duration
from mednext_fw.trainers.checkpoint import load_checkpoint
from mednext_fw.trainers.experiment import SegmentationSpec
from mednext_fw.trainers.guards import StopRequested
from mednext_fw.trainers.pacing import Pacer
from mednext_fw.trainers.segmentation import MedNeXtTrainer
from mednext_fw.trainers.time_budget import TimeBudgetError
from tests.trainers.conftest import fast_settings
from tests.trainers.synthetic import NAME
from tests.trainers.test_segmentation import _free_port

VAL_S, FINAL_S = 0.5, 10.0


class StepClock:
    """Time moves only when the trainer works: ``step_s`` per training step, VAL_S per validation batch."""

    def __init__(self, step_s: float = 1.0):
        self.t, self.step_s = 100.0, step_s

    def __call__(self) -> float:
        return self.t


def paced(trainer: MedNeXtTrainer, budget_s: float, clock: StepClock) -> MedNeXtTrainer:
    trainer.pacer = Pacer(trainer, budget_s, clock)
    step, validate = trainer.train_step, trainer._validate_epoch

    def timed_step(*args):
        clock.t += clock.step_s
        return step(*args)

    def timed_validation(epoch):
        clock.t += VAL_S * trainer.settings.val_iters
        return validate(epoch)

    trainer.train_step, trainer._validate_epoch = timed_step, timed_validation
    trainer.time_validation_batch = lambda: VAL_S
    trainer.estimate_final_validation_s = lambda: FINAL_S

    def final_validation():
        clock.t += FINAL_S

    trainer.final_validation = final_validation
    return trainer


def budget_settings(**kw):
    # final_validation on, but its time comes from the fake estimate and the run itself is replaced
    return fast_settings(num_epochs=1000, iters_per_epoch=250, val_iters=50, time_budget_s=150.0,
                         final_validation=True, **kw)


@pytest.mark.slow  # a real trainer for 10+ s; the fitting logic's unit tests are in test_time_budget.py
def test_budget_fits_refits_and_finishes_the_schedule(synth_env):
    clock = StepClock(1.0)
    slow_from_epoch = 4

    def slow_down(trainer):
        if trainer.epoch == slow_from_epoch:
            clock.step_s = 2.0  # another process starts on the machine

    trainer = paced(MedNeXtTrainer(SegmentationSpec(NAME, fold="0"), budget_settings(), callbacks=[slow_down]),
                    150.0, clock)
    trainer.run()
    s = trainer.settings
    log = (trainer.output_dir / "training_log.txt").read_text()
    # calibration: 1.0 s per step, 0.5 s per validation batch, 10 s final validation; ~147.75 s to aim at
    # -> 20 epochs wanted, but 10 iterations is the minimum -> 10 (+2) iterations per 12 s epoch
    assert "calibration measured 1.000 s per training step" in log and "final validation ~10s" in log
    assert "-> 11 epochs x 10 iterations (+2 validation)" in log  # (147.75 - 10) // 12
    assert s.iters_per_epoch == 10 and s.val_iters == 2
    assert "Time budget re-fit" in log and s.num_epochs < 11  # slower steps: fewer epochs
    assert trainer.epoch == s.num_epochs
    used = trainer.pacer.used_s()
    assert 0.85 * 150 <= used <= 150 and f"Wall time {format_duration(used)}" in log
    # the poly decay was re-fitted, not cut off: the last epoch ran at the schedule's last step
    last_lr = trainer.logger.history["lr"][-1]
    assert last_lr == pytest.approx(trainer.schedule.lr_at(s.num_epochs - 1)) 
    assert last_lr <= s.lr * (1 / s.num_epochs) ** 0.9 * 1.0001  # as low as a plain poly run of this length ends
    assert all(a >= b for a, b in zip(trainer.logger.history["lr"], trainer.logger.history["lr"][1:]))
    assert min(trainer.logger.history["lr"]) > 0  # a re-fit never jumps to the end of the decay
    hist = trainer.logger.history
    assert len(hist["wall_time"]) == trainer.epoch and all(p > 0 for p in hist["predicted_end"])
    assert (trainer.output_dir / "progress.png").is_file()


def test_budget_too_small_is_a_clear_error(synth_env):
    trainer = paced(MedNeXtTrainer(SegmentationSpec(NAME, fold="0"), budget_settings()), 15.0, StepClock(1.0))
    with pytest.raises(TimeBudgetError, match=r"too small: the minimum for this plan on this machine is 2\ds"):
        trainer.run()


def _stop_after_two(trainer):
    if trainer.epoch == 2:
        os.kill(os.getpid(), __import__("signal").SIGINT)


@pytest.mark.slow  # a real trainer for 10+ s; the fitting logic's unit tests are in test_time_budget.py
def test_continue_counts_the_time_already_used(synth_env):
    spec = SegmentationSpec(NAME, fold="0")
    first = paced(MedNeXtTrainer(spec, budget_settings(), callbacks=[_stop_after_two]), 150.0, StepClock(1.0))
    with pytest.raises(StopRequested):
        first.run()
    saved = load_checkpoint(first.output_dir / "checkpoint_latest.pth")
    used = saved["pacing"]["used_s"]
    assert used == pytest.approx(2 * (10 + 2 * VAL_S) + 0, abs=0.5)  # two epochs of the fake clock

    second = paced(MedNeXtTrainer(spec, budget_settings(continue_training=True)), 150.0, StepClock(1.0))
    second.run()
    log = (second.output_dir / "training_log.txt").read_text()
    assert f"({used:.0f}s used by earlier sessions)" in log
    assert second.settings.iters_per_epoch == 10  # kept from the first session
    total = second.pacer.used_s()
    assert 0.85 * 150 <= total <= 150  # the whole run, both sessions, fits the budget


def test_without_budget_the_estimate_is_printed(synth_env):
    trainer = MedNeXtTrainer(SegmentationSpec(NAME, fold="0"), fast_settings(num_epochs=2, iters_per_epoch=8))
    trainer.run()
    log = (trainer.output_dir / "training_log.txt").read_text()
    assert "Estimated wall time of 2 epochs x 8 iterations" in log and "predicted end" in log


def _ddp_budget_worker(rank: int, port: int, env: dict, out_dir: str) -> None:
    os.environ.update(env)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = MedNeXtTrainer(SegmentationSpec(NAME, fold="all"), budget_settings())
    # the ranks' clocks disagree (rank 1 sees 3x slower steps): rank 0 must decide for both
    paced(trainer, 60.0, StepClock(1.0 if rank == 0 else 3.0))
    try:
        trainer.run()
        torch.save({"epochs": trainer.epoch, "iters": trainer.settings.iters_per_epoch,
                    "steps": trainer.steps_per_rank}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        trainer.dist.shutdown()


@pytest.mark.slow
def test_ddp_rank0_decides(synth_env, tmp_path):
    env = {k: os.environ[k] for k in ("MEDNEXT_raw", "MEDNEXT_preprocessed", "MEDNEXT_results")}
    mp.spawn(_ddp_budget_worker, args=(_free_port(), env, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    # rank 0's 1 s steps set the plan: (60 * 0.985 - 10 s final validation) // 12 s epochs = 3 epochs
    # (rank 1's own clock would have allowed none)
    assert r0 == r1 and r0["iters"] == 10 and r0["epochs"] >= 3
