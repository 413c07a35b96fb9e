import json

import numpy as np
import pytest

from mednext_fw.cli.plan_and_preprocess import main
from mednext_fw.planners.plans import Plans
from tests.helpers_data import make_png_dataset


def test_dataset001_end_to_end(brain_raw, roots):
    """The issue's must-show: ``mednext_plan_and_preprocess -d 1`` on all 5 real cases (planned for an
    8 GB GPU, whatever this machine has)."""
    assert main(["-d", "1", "-c", "3d_fullres", "-np", "2", "--gpu-memory-gb", "8"]) == 0
    out = roots["preprocessed"] / "Dataset001_BrainMask"
    for name in ("dataset.json", "fingerprint.json", "plans.json", "splits_final.json"):
        assert (out / name).is_file()
    plans = Plans.load(out / "plans.json")
    cfg = plans.configurations["3d_fullres"]
    assert cfg.spacing == [2.0, 2.0, 2.0] and cfg.patch_size == [80, 112, 96] and cfg.network.variant == "S"
    cases = sorted(p.name[:-7] for p in (brain_raw / "labelsTr").iterdir())
    for c in cases:
        data = np.load(out / cfg.data_identifier / f"{c}.npy", mmap_mode="r")
        seg = np.load(out / cfg.data_identifier / f"{c}_seg.npy", mmap_mode="r")
        assert data.shape == seg.shape and data.shape[0] == 1 and 80 <= data.shape[1] <= 95
        assert (out / "gt_segmentations" / f"{c}.nii.gz").is_file()
    assert len(json.loads((out / "splits_final.json").read_text())) == 5
    assert main(["-d", "BrainMask", "-c", "3d_fullres", "-np", "1", "--no-verify"]) == 0  # resumes: all done


def test_png_2d_dataset(roots, capsys):
    make_png_dataset(roots["raw"])
    assert main(["-d", "6", "-np", "1"]) == 0
    out = roots["preprocessed"] / "Dataset006_Png"
    plans = Plans.load(out / "plans.json")
    assert list(plans.configurations) == ["2d"]
    cfg = plans.configurations["2d"]
    assert cfg.spacing == [1.0, 1.0] and cfg.patch_size == [48, 48] and cfg.batch_size >= 2
    data = np.load(out / "mednextPlans_2d" / "p0.npy")
    seg = np.load(out / "mednextPlans_2d" / "p0_seg.npy")
    assert data.shape[:2] == (1, 1) and set(np.unique(seg)) <= {-1, 0, 1, 2}
    assert "3d_fullres: not in the plans" in capsys.readouterr().out


def test_plan_only_with_overrides(brain_raw, roots):
    assert main(["-d", "Dataset001_BrainMask", "--no-pp", "--spacing", "4", "4", "4", "-m", "B", "-k", "5",
                 "--gpu-memory-gb", "16"]) == 0
    out = roots["preprocessed"] / "Dataset001_BrainMask"
    cfg = Plans.load(out / "plans.json").configurations["3d_fullres"]
    assert cfg.spacing == [4.0] * 3 and (cfg.network.variant, cfg.network.kernel_size) == ("B", 5)
    assert not (out / "mednextPlans_3d_fullres").exists()


def test_cpu_plan_with_a_time_budget(brain_raw, roots, capsys):
    assert main(["-d", "1", "--no-pp", "--device", "cpu", "--time-budget", "2h"]) == 0
    plans = Plans.load(roots["preprocessed"] / "Dataset001_BrainMask" / "plans.json")
    cfg = plans.configurations["3d_fullres"]
    assert cfg.extra == {"planned_for": "cpu", "time_budget": "2h"} and "3d_lowres" not in plans.configurations
    assert cfg.batch_size == 2 and cfg.network.variant == "S"
    out = capsys.readouterr().out
    assert "no GPU: planned for the CPU" in out and "time budget 7200 s / 1000 steps" in out
    # two hours allow a finer or wider plan than the default 0.5 s step of the 2-core CPU plan
    assert cfg.spacing[0] < 4.0 or cfg.network.kwargs.get("n_channels", 32) > 8


@pytest.mark.parametrize("argv, message", [
    (["-d", "42"], "No dataset matches '42'"),
    (["-d", "1", "--spacing", "1", "0", "1"], "--spacing must be positive"),
    (["-d", "1", "-np", "0"], "-np must be >= 1"),
    (["-d", "1", "--time-budget", "soon"], "cannot read the duration 'soon'"),
])
def test_user_errors(brain_raw, roots, capsys, argv, message):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(roots["preprocessed"].iterdir()) == []


def test_paths_not_set(monkeypatch, capsys):
    for k in ("MEDNEXT_raw", "MEDNEXT_preprocessed", "MEDNEXT_results", "nnUNet_raw", "nnUNet_preprocessed",
              "nnUNet_results"):
        monkeypatch.delenv(k, raising=False)
    assert main(["-d", "1"]) == 1
    assert "MEDNEXT_raw" in capsys.readouterr().err
