"""The generic loop through the segmentation trainer: resume after a signal, the NaN guard."""
import os
import signal

import pytest
import torch

from mednext_fw.trainers.checkpoint import load_checkpoint
from mednext_fw.trainers.experiment import SegmentationSpec
from mednext_fw.trainers.guards import StopRequested, TrainingDivergedError
from mednext_fw.trainers.segmentation import MedNeXtTrainer
from tests.trainers.conftest import fast_settings
from tests.trainers.synthetic import NAME


def _sigint_after_first_epoch(trainer):
    if trainer.epoch == 1:
        os.kill(os.getpid(), signal.SIGINT)  # handled at the next iteration boundary


def test_interrupt_then_continue_restores_state(synth_env):
    spec = SegmentationSpec(NAME, fold="0")
    first = MedNeXtTrainer(spec, fast_settings(num_epochs=3), callbacks=[_sigint_after_first_epoch])
    with pytest.raises(StopRequested):
        first.run()
    fold = synth_env / "MedNeXtTrainer__3d_fullres" / "fold_0"
    saved = load_checkpoint(fold / "checkpoint_latest.pth")
    assert saved["epoch"] == 1 and not (fold / "checkpoint_final.pth").exists()

    second = MedNeXtTrainer(spec, fast_settings(num_epochs=3, continue_training=True))
    second.setup()
    assert second.resume().name == "checkpoint_latest.pth"
    opt_now, opt_saved = second.optimizer.state_dict(), saved["optimizer_state"]
    assert opt_now["state"].keys() == opt_saved["state"].keys() and len(opt_now["state"]) > 0
    for k, st in opt_saved["state"].items():
        assert torch.equal(opt_now["state"][k]["exp_avg"], st["exp_avg"])
        assert torch.equal(opt_now["state"][k]["exp_avg_sq"], st["exp_avg_sq"])
        assert float(opt_now["state"][k]["step"]) == float(st["step"]) == 2  # 1 epoch x 2 iterations
    assert second.epoch == 1 and second.schedule.state_dict() == saved["schedule_state"]
    assert second.optimizer.param_groups[0]["lr"] == pytest.approx(opt_saved["param_groups"][0]["lr"])
    assert second.logger.history["train_loss"] == saved["logger"]["history"]["train_loss"]
    second.run()

    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert final["epoch"] == 3 and len(final["logger"]["history"]["train_loss"]) == 3
    assert float(next(iter(final["optimizer_state"]["state"].values()))["step"]) == 6
    log = (fold / "training_log.txt").read_text()
    markers = ["Epoch 1:", "Interrupted during epoch 2", "Resumed from checkpoint_latest.pth at epoch 1",
               "Epoch 2:", "Epoch 3:", "Training finished after 3 epochs"]
    positions = [log.index(m) for m in markers]
    assert positions == sorted(positions)
    assert log.count("Epoch 2:") == 1


def test_nan_guard_skips_single_bad_step(synth_env):
    trainer = MedNeXtTrainer(SegmentationSpec(NAME, fold="0"), fast_settings(num_epochs=1))
    calls = {"n": 0}
    original = trainer.compute_loss

    def sometimes_nan(output, target):
        calls["n"] += 1
        loss = original(output, target)
        return loss * float("nan") if calls["n"] == 1 else loss

    trainer.compute_loss = sometimes_nan
    trainer.run()
    assert trainer.steps_per_rank == [1]  # 2 iterations, the NaN one skipped
    log = (synth_env / "MedNeXtTrainer__3d_fullres" / "fold_0" / "training_log.txt").read_text()
    assert "optimiser step skipped (1/10 in a row)" in log


def test_nan_guard_stops_after_repeated_failures(synth_env):
    trainer = MedNeXtTrainer(SegmentationSpec(NAME, fold="0"), fast_settings(num_epochs=2, max_nonfinite=2))
    trainer.setup()
    before = {k: v.clone() for k, v in trainer.network.state_dict().items()}
    original = trainer.compute_loss
    trainer.compute_loss = lambda out, tgt: original(out, tgt) * float("inf")
    with pytest.raises(TrainingDivergedError, match="2 consecutive iterations"):
        trainer.run()
    after = trainer.network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no step was ever applied
