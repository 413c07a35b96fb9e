"""The demo end to end with a reduced budget: every stage runs and leaves valid outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from mednext_fw.cli.demo import main


@pytest.mark.slow
def test_demo_runs_every_stage(tmp_path, monkeypatch):
    for k in ("raw", "preprocessed", "results"):
        # The demo points os.environ at its own roots; registering the keys here makes monkeypatch
        # restore them afterwards, so later tests do not see the demo's datasets.
        monkeypatch.setenv(f"MEDNEXT_{k}", str(tmp_path / "unused"))
    work = tmp_path / "demo"
    assert main(["--workdir", str(work), "--epochs", "1", "--iters-per-epoch", "2"]) == 0

    summary = json.loads((work / "holdout" / "predictions" / "summary.json").read_text())
    cases = {c["case"] for c in summary["metric_per_case"]}
    assert cases == {"colin27_1mm", "colin27_2mm"}  # the anatomy held back from training
    assert 0.0 <= summary["foreground_mean"]["Dice"] <= 1.0
    assert not (work / "raw" / "Dataset001_BrainMask" / "labelsTr" / "colin27_1mm.nii.gz").exists()

    for case in cases:
        img = sitk.ReadImage(str(work / "holdout" / "images" / f"{case}_0000.nii.gz"))
        pred = sitk.ReadImage(str(work / "holdout" / "predictions" / f"{case}.nii.gz"))
        assert pred.GetSize() == img.GetSize()
        assert np.allclose(pred.GetSpacing(), img.GetSpacing())
        assert np.allclose(pred.GetOrigin(), img.GetOrigin())
        assert np.allclose(pred.GetDirection(), img.GetDirection())
        with Image.open(work / "overlays" / f"{case}.png") as png:
            png.verify()
        with Image.open(work / "overlays" / f"{case}.png") as png:
            assert png.format == "PNG" and png.size[0] > 300
            assert np.asarray(png.convert("RGB")).std() > 10  # a picture, not a blank canvas


@pytest.mark.slow
def test_classification_demo_trains_both_plugins_and_predicts_held_out_images(tmp_path, monkeypatch):
    for k in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"MEDNEXT_{k}", str(tmp_path / "unused"))
    work = tmp_path / "demo"
    assert main(["--workdir", str(work), "--classification", "--epochs", "1"]) == 0
    held_out = sorted(p.name for p in (work / "holdout_planes").iterdir())
    for trainer in ("HoViT", "XrayMoE"):
        rows = (work / "predictions" / trainer / "predictions.csv").read_text().splitlines()
        assert sorted(r.split(",")[0] for r in rows[1:]) == held_out
        fold = work / "results" / "Dataset101_MRIPlanes" / f"{trainer}__2d_cls" / "fold_0"
        assert 0.0 <= json.loads((fold / "validation" / "summary.json").read_text())["accuracy"] <= 1.0
