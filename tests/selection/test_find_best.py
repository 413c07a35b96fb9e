"""Model selection on hand-made cross-validation results: the ensemble wins where it must, the
files are written, and every refusal names what is missing."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mednext_fw.cli import find_best_configuration as cli
from mednext_fw.selection import SelectionError, find_best_configuration
from tests.selection import handmade


def test_ensemble_is_chosen_when_it_is_better(roots):
    results = handmade.build(roots)
    info = find_best_configuration("9", folds=[0, 1], num_processes=1)
    scores = {c["name"]: c["Dice"] for c in info["candidates"]}
    assert scores["MedNeXtTrainer__2d"] == pytest.approx(2 / 3, abs=1e-6)
    assert scores["MedNeXtTrainer__3d_fullres"] == pytest.approx(2 / 3, abs=1e-6)
    ensemble = "ensemble___MedNeXtTrainer__2d___MedNeXtTrainer__3d_fullres"
    assert scores[ensemble] == pytest.approx(1.0)
    assert info["best"]["name"] == ensemble
    assert not np.isnan(info["best"]["NSD"])
    written = json.loads((results / "inference_information.json").read_text())
    assert written["best"]["name"] == ensemble and written["cases"] == handmade.CASES
    text = (results / "inference_instructions.txt").read_text()
    commands = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert [c.split()[0] for c in commands] == ["mednext_predict", "mednext_predict", "mednext_ensemble",
                                                "mednext_apply_postprocessing"]
    assert "-c 2d" in commands[0] and "-c 3d_fullres" in commands[1] and "--save-probabilities" in commands[0]
    assert (results / "ensembles").is_dir()


def test_single_model_when_ensembling_is_disabled(roots):
    results = handmade.build(roots)
    assert cli.main(["-d", "9", "-f", "0", "1", "--disable-ensembling", "-np", "1"]) == 0
    info = json.loads((results / "inference_information.json").read_text())
    assert len(info["candidates"]) == 2 and len(info["best"]["members"]) == 1
    commands = [line for line in (results / "inference_instructions.txt").read_text().splitlines()
                if line and not line.startswith("#")]
    assert [c.split()[0] for c in commands] == ["mednext_predict", "mednext_apply_postprocessing"]


def test_missing_fold_is_named(roots, capsys):
    handmade.build(roots, folds=(0,))
    assert cli.main(["-d", "9", "-f", "0", "1", "-np", "1"]) == 1
    err = capsys.readouterr().err
    assert "fold_1" in err and "MedNeXtTrainer__2d" in err


def test_missing_probabilities_are_named(roots):
    results = handmade.build(roots)
    (results / "MedNeXtTrainer__3d_fullres" / "fold_1" / "validation" / "c3.npz").unlink()
    with pytest.raises(SelectionError, match=r"fold_1/validation/c3\.npz"):
        find_best_configuration("9", folds=[0, 1], num_processes=1)
    # without ensembling they are not needed
    info = find_best_configuration("9", folds=[0, 1], ensembling=False, num_processes=1)
    assert len(info["candidates"]) == 2


def test_missing_validation_prediction_is_named(roots):
    results = handmade.build(roots)
    (results / "MedNeXtTrainer__2d" / "fold_0" / "validation" / "c1.nii.gz").unlink()
    with pytest.raises(SelectionError, match=r"fold_0/validation/c1\.nii\.gz"):
        find_best_configuration("9", folds=[0, 1], num_processes=1)


def test_different_case_sets_are_refused(roots):
    results = handmade.build(roots)
    summary = results / "MedNeXtTrainer__3d_fullres" / "fold_1" / "validation" / "summary.json"
    summary.write_text(json.dumps({"metric_per_case": [{"case": "c2"}]}))
    with pytest.raises(SelectionError, match="different cases.*c3"):
        find_best_configuration("9", folds=[0, 1], num_processes=1)


def test_untrained_configuration_asked_for_is_refused(roots):
    handmade.build(roots, configs=("2d",))
    with pytest.raises(SelectionError, match="MedNeXtTrainer__3d_fullres"):
        find_best_configuration("9", configs=["2d", "3d_fullres"], folds=[0, 1], num_processes=1)
    info = find_best_configuration("9", folds=[0, 1], num_processes=1)  # by default only what is trained
    assert [c["name"] for c in info["candidates"]] == ["MedNeXtTrainer__2d"]
