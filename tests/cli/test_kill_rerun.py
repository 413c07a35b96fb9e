"""kill -9 of the four writing commands at several moments, then a re-run: nothing partial is ever
visible under a real name, leftovers are temporaries only, and the re-run finishes the work."""
import shutil

import numpy as np
import pytest

from mednext_fw.cli import plan_and_preprocess
from mednext_fw.io.integrity import verify_dataset
from mednext_fw.network_architectures.checkpoint import load_checkpoint
from mednext_fw.preprocessing.folder import PreprocessedFolder
from tests.inference.model_factory import brain_plans, make_model_folder
from tests.kill_rerun import assert_no_temporaries, assert_nothing_partial, files_appeared, kill_at_moments, run

pytestmark = pytest.mark.slow

PREPROCESS = ["-d", "1", "--spacing", "4", "4", "4", "-c", "3d_fullres", "-np", "1"]
TINY_TRAIN = ["--patch-size", "32", "32", "32", "--n-channels", "4", "--network-kwargs",
              '{"block_counts": [1,1,1,1,1,1,1,1,1]}', "--iters-per-epoch", "2", "--val-iters", "1", "-np", "0",
              "--seed", "0", "--no-progress", "--no-final-val", "--continue"]


def _case_folder(roots):
    pre = PreprocessedFolder(roots["preprocessed"] / "Dataset001_BrainMask")
    return pre.configuration(next(p.name for p in pre.path.iterdir() if p.name.endswith("_3d_fullres")))


def test_plan_and_preprocess(brain_raw, roots):
    pre = roots["preprocessed"]
    moments = [files_appeared(pre, "*.json"),  # planning done, preprocessing starting
               files_appeared(pre, "*.npy", temporaries=True),  # in the middle of writing an array
               files_appeared(pre, "*_seg.npy", count=2)]

    def listed_cases_are_whole():
        if (pre / "Dataset001_BrainMask" / "plans.json").is_file() and any(pre.rglob("configuration.json")):
            folder = _case_folder(roots)
            for case in folder.cases():
                assert folder.read_data(case, mmap=False).shape[1:] == folder.read_seg(case, mmap=False).shape[1:]

    assert kill_at_moments("plan_and_preprocess", PREPROCESS, moments, pre, listed_cases_are_whole) >= 2
    run("plan_and_preprocess", PREPROCESS)
    folder = _case_folder(roots)
    assert len(folder.cases()) == 5 and folder.incomplete_cases() == []
    assert_no_temporaries(pre)


def test_train(brain_raw, roots):
    assert plan_and_preprocess.main(PREPROCESS) == 0
    results = roots["results"]
    args = ["-c", "3d_fullres", "all", "--epochs", "4", *TINY_TRAIN]
    fold = results / "Dataset001_BrainMask" / "MedNeXtTrainer__3d_fullres" / "fold_all"
    moments = [files_appeared(results, "plans.json"),  # setting up
               files_appeared(results, "*.pth", temporaries=True),  # writing a checkpoint
               files_appeared(results, "checkpoint_latest.pth"),  # after the first epoch
               files_appeared(results, "*.png", temporaries=True)]  # writing the progress plot
    assert kill_at_moments("train", args, moments, results) >= 2
    run("train", args)
    assert load_checkpoint(fold / "checkpoint_final.pth")["epoch"] == 4
    assert_no_temporaries(results)


def test_predict(roots, shared_data, tmp_path):
    make_model_folder(roots["results"], shared_data / "Dataset001_BrainMask", plans=brain_plans(spacing=(8.0,) * 3))
    inputs, out = tmp_path / "in", tmp_path / "out"
    shutil.copytree(shared_data / "Dataset001_BrainMask" / "imagesTr", inputs)
    args = ["-i", str(inputs), "-o", str(out), "--disable-tta", "-np", "0"]
    moments = [files_appeared(out, "*.nii.gz", temporaries=True),  # writing the first label map
               files_appeared(out, "*.nii.gz", count=2),
               files_appeared(out, "*.nii.gz", count=4)]
    assert kill_at_moments("predict", args, moments, out) >= 2
    run("predict", args)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name.replace("_0000", "") for p in inputs.iterdir())
    assert_nothing_partial(out)
    assert_no_temporaries(out)


def test_convert(roots, shared_data):
    src = shared_data / "Dataset001_BrainMask"
    args = ["folders", "--images", str(src / "imagesTr"), "--labels", str(src / "labelsTr"), "--name", "Killed",
            "-d", "42", "-o", str(roots["raw"]), "-np", "1"]
    target = roots["raw"] / "Dataset042_Killed"
    partial = roots["raw"] / ".Dataset042_Killed.partial"
    moments = [files_appeared(partial, "*.nii.gz", temporaries=True),  # copying a file
               files_appeared(partial, "*.nii.gz", count=4),
               files_appeared(partial, "*.nii.gz", count=8)]

    def published_means_complete():
        if target.exists():
            verify_dataset(target, num_processes=1)

    # copies slowed down (tests/slow_io.py): at full speed all ten files are written within one poll
    assert kill_at_moments("convert", args, moments, roots["raw"], published_means_complete, slow_copy=0.05) >= 2
    run("convert", args)
    assert verify_dataset(target, num_processes=1).num_training == 5
    assert not partial.exists()
    assert_no_temporaries(roots["raw"])
    assert np.array_equal(sorted(p.name for p in (target / "imagesTr").iterdir()),
                          sorted(p.name for p in (src / "imagesTr").iterdir()))
