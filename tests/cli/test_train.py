"""``mednext_train`` end to end on the real Dataset001_BrainMask (4 mm, tiny MedNeXt, 2 x 3 iterations)."""
import json

import pytest
import torch

from mednext_fw.cli import plan_and_preprocess, train
from mednext_fw.trainers.checkpoint import load_checkpoint

TINY = ["--patch-size", "32", "32", "32", "--n-channels", "4", "--network-kwargs", '{"block_counts": [1,1,1,1,1,1,1,1,1]}',
        "--iters-per-epoch", "3", "--val-iters", "1", "--num-workers", "0", "--seed", "0", "--disable-tta", "--no-progress"]


@pytest.fixture
def brain_pre(brain_raw, roots):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    assert plan_and_preprocess.main(["-d", "1", "--spacing", "4", "4", "4", "-c", "3d_fullres", "-np", "1"]) == 0
    yield roots
    torch.set_num_threads(before)


@pytest.mark.slow
def test_train_fold_writes_every_output(brain_pre, capsys):
    assert train.main(["3d_fullres", "0", "--epochs", "2", *TINY]) == 0  # -d omitted: one dataset
    model = brain_pre["results"] / "Dataset001_BrainMask" / "MedNeXtTrainer__3d_fullres"
    fold = model / "fold_0"
    assert json.loads((model / "plans.json").read_text())["configurations"]["3d_fullres"]["patch_size"] == [32] * 3
    assert "brain" in json.loads((model / "dataset.json").read_text())["labels"]
    for name in ("final", "latest", "best"):
        ck = load_checkpoint(fold / f"checkpoint_{name}.pth")
        assert ck["config_name"] == "3d_fullres" and ck["network_builder"]["name"] == "mednext"
    assert load_checkpoint(fold / "checkpoint_final.pth")["epoch"] == 2
    png = (fold / "progress.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a drawn figure, not an empty canvas
    splits = json.loads((brain_pre["preprocessed"] / "Dataset001_BrainMask" / "splits_final.json").read_text())
    val = splits[0]["val"]
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert sorted(c["case"] for c in summary["metric_per_case"]) == sorted(val)
    for case in summary["metric_per_case"]:
        metrics = case["metrics"]["1"]
        assert 0 <= metrics["Dice"] <= 1 and metrics["NSD"] == metrics["NSD"]
        assert (fold / "validation" / f"{case['case']}.nii.gz").is_file()

    # --continue with a longer schedule: same folder, same log, epoch count extended
    assert train.main(["3d_fullres", "0", "-d", "1", "--epochs", "3", "--continue", "--no-final-val", *TINY]) == 0
    assert load_checkpoint(fold / "checkpoint_final.pth")["epoch"] == 3
    log = (fold / "training_log.txt").read_text()
    assert log.count("Epoch 1:") == log.count("Epoch 3:") == 1 and "Resumed from" in log


def test_user_errors_exit_1_without_traceback(brain_pre, capsys):
    assert train.main(["3d_fullres", "x"]) == 1
    assert train.main(["3d_fullres", "9", *TINY]) == 1
    assert train.main(["2d_nonexistent", "0", *TINY]) == 1
    assert train.main(["3d_fullres", "0", "-d", "77", *TINY]) == 1
    assert train.main(["3d_fullres", "0", "--pretrained", "/no/such.pth", *TINY]) == 1
    assert train.main(["3d_fullres", "0", "-tr", "NoSuchTrainer", *TINY]) == 1
    assert train.main(["3d_fullres", "0", "--epochs", "1", "--patch-size", "32", "32", *TINY[4:]]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in ("FOLD must be", "fold 9 does not exist", "2d_nonexistent", "No dataset matches '77'",
                 "/no/such.pth", "Unknown trainer 'NoSuchTrainer'", "--patch-size needs 3"):
        assert text in err


def test_incomplete_case_is_refused_naming_it_and_the_fix(brain_pre, capsys):
    # What an interrupted preprocess can leave: the image array of a case, without labels and properties.
    data = next(brain_pre["preprocessed"].glob("Dataset001_BrainMask/*_3d_fullres"))
    case = sorted(p.name[:-len("_seg.npy")] for p in data.glob("*_seg.npy"))[0]
    (data / f"{case}_seg.npy").unlink()
    (data / f"{case}.json").unlink()
    assert train.main(["3d_fullres", "all", "--epochs", "1", *TINY]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"({case})" in err and "not completely preprocessed" in err
    assert "re-run mednext_plan_and_preprocess -d Dataset001_BrainMask -c 3d_fullres" in err
    assert plan_and_preprocess.main(["-d", "1", "-c", "3d_fullres", "-np", "1"]) == 0  # the fix: it resumes
    assert (data / f"{case}.json").is_file()


@pytest.mark.slow
def test_stale_temporary_is_not_a_case(brain_pre):
    # A kill -9 during np.save leaves a hidden, truncated temporary; it used to be read as a 6th case.
    data = next(brain_pre["preprocessed"].glob("Dataset001_BrainMask/*_3d_fullres"))
    (data / ".ghost.tmp-1a2b3c4d.npy").write_bytes(b"\x93NUMPY\x01\x00truncated")
    assert train.main(["-c", "3d_fullres", "all", "--epochs", "1", "--no-final-val", *TINY]) == 0  # -c as elsewhere
    assert plan_and_preprocess.main(["-d", "1", "-c", "3d_fullres", "-np", "1"]) == 0
    assert not (data / ".ghost.tmp-1a2b3c4d.npy").exists()  # every run sweeps the temporaries of dead runs
