"""``mednext_train --val``: the final validation of a trained fold alone (nnU-Net's --val), its refusals,
which predictions it keeps, and a kill -9 in the middle that the same command resumes."""
import json

import pytest

from mednext_fw.cli import train
from tests.cli.test_train import TINY, brain_pre  # noqa: F401 - brain_pre is a fixture
from tests.kill_rerun import assert_no_temporaries, assert_nothing_partial, files_appeared, kill_when, run, start

pytestmark = pytest.mark.slow


def _fold(roots):
    return roots["results"] / "Dataset001_BrainMask" / "MedNeXtTrainer__3d_fullres" / "fold_0"


def _stamps(val, cases):
    return {c: (val / f"{c}.nii.gz").stat().st_mtime_ns for c in cases}


def test_val_only_validates_the_chosen_weights_and_keeps_what_they_predicted(brain_pre, capsys):  # noqa: F811
    fold, val = _fold(brain_pre), _fold(brain_pre) / "validation"
    assert train.main(["3d_fullres", "0", "--val", *TINY]) == 1
    assert "checkpoint_final.pth does not exist: train this fold first" in capsys.readouterr().err
    assert train.main(["3d_fullres", "0", "--epochs", "2", "--no-final-val", *TINY]) == 0
    assert not (val / "summary.json").exists()
    for flags, text in ((["--val-best"], "--val-best goes with --val"),
                        (["--val", "--continue", "--no-final-val"], "drop --continue, --no-final-val")):
        assert train.main(["3d_fullres", "0", *flags, *TINY]) == 1
        assert text in capsys.readouterr().err

    assert train.main(["3d_fullres", "0", "--val", "--npz", *TINY]) == 0
    cases = [c["case"] for c in json.loads((val / "summary.json").read_text())["metric_per_case"]]
    assert cases and all((val / f"{c}.npz").is_file() for c in cases)
    assert json.loads((val / "weights.json").read_text())["checkpoint"] == "checkpoint_final.pth"
    stamps = _stamps(val, cases)
    assert train.main(["3d_fullres", "0", "--val", "--npz", *TINY]) == 0  # the same weights: kept
    assert _stamps(val, cases) == stamps
    assert train.main(["3d_fullres", "0", "--val", "--val_best", *TINY]) == 0  # other weights: predicted again
    assert json.loads((val / "weights.json").read_text())["checkpoint"] == "checkpoint_best.pth"
    assert all(t != stamps[c] for c, t in _stamps(val, cases).items())
    log = (fold / "training_log.txt").read_text()
    assert "Validation only: the weights of checkpoint_best.pth" in log and "weights of checkpoint_best.pth)" in log


def test_val_only_killed_while_writing_resumes(brain_pre):  # noqa: F811
    fold = _fold(brain_pre)
    assert train.main(["3d_fullres", "0", "--epochs", "1", "--no-final-val", *TINY]) == 0
    args = ["3d_fullres", "0", "--val", "--npz", *TINY]
    assert kill_when(start("train", args), files_appeared(fold / "validation", "*.nii.gz", temporaries=True),
                     poll=0.001)  # while a prediction is being written
    assert_nothing_partial(fold)
    run("train", args)
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert all((fold / "validation" / f"{c['case']}.npz").is_file() for c in summary["metric_per_case"])
    assert_no_temporaries(fold)
