import csv
import json
import math

import numpy as np
import pytest
import SimpleITK as sitk

from mednext_fw.evaluation import EvaluationError, evaluate_folders, format_table


def _write(path, arr, spacing=(1.0, 1.0, 2.0)):
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.SetSpacing(spacing)  # (x, y, z)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))


def _case(seed):
    rng = np.random.default_rng(seed)
    ref = np.zeros((8, 12, 12), np.uint8)
    ref[2:6, 2:8, 3:9] = 1
    ref[3:5, 8:11, 3:9] = 2
    pred = ref.copy()
    pred[2, 2:8, 3:3 + int(rng.integers(1, 6))] = 0
    return ref, pred


@pytest.fixture
def folders(tmp_path):
    ref_dir, pred_dir = tmp_path / "ref", tmp_path / "pred"
    for i, case in enumerate(["a", "b", "c"]):
        ref, pred = _case(i)
        _write(ref_dir / f"{case}.nii.gz", ref)
        _write(pred_dir / f"{case}.nii.gz", pred)
    return ref_dir, pred_dir


def test_summary_json_and_csv(folders, tmp_path):
    ref_dir, pred_dir = folders
    out_json, out_csv = tmp_path / "o" / "summary.json", tmp_path / "o" / "cases.csv"
    s = evaluate_folders(ref_dir, pred_dir, [(1,), (2,), (1, 2)], ".nii.gz", output_json=out_json,
                         output_csv=out_csv, num_processes=1)
    assert [c["case"] for c in s["metric_per_case"]] == ["a", "b", "c"]
    assert s["metric_per_case"][0]["reference_file"].endswith("a.nii.gz")
    dices = [c["metrics"]["1"]["Dice"] for c in s["metric_per_case"]]
    assert s["mean"]["1"]["Dice"] == pytest.approx(np.mean(dices))
    assert s["mean"]["2"]["Dice"] == 1.0
    assert s["foreground_mean"]["Dice"] == pytest.approx(np.mean([s["mean"][k]["Dice"] for k in ("1", "2", "(1, 2)")]))
    assert json.loads(out_json.read_text())["mean"] == s["mean"]
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 9 and rows[0]["case"] == "a" and rows[0]["region"] == "1"
    assert float(rows[0]["Dice"]) == pytest.approx(dices[0])
    assert "NSD@1mm" in format_table(s)
    assert not list(tmp_path.glob("o/.*tmp*"))


def test_spacing_read_from_files(folders):
    ref_dir, pred_dir = folders
    s = evaluate_folders(ref_dir, pred_dir, [(1,)], ".nii.gz", num_processes=1)
    c = s["metric_per_case"][0]["metrics"]["1"]
    assert c["volume_ref"] == pytest.approx(c["n_ref"] * 2.0)  # voxel = 1 x 1 x 2 mm


def test_case_ids_restrict_matching(folders):
    ref_dir, pred_dir = folders
    (pred_dir / "c.nii.gz").unlink()
    (pred_dir / "notes.txt").write_text("other files may sit in the folder")
    s = evaluate_folders(ref_dir, pred_dir, [(1,)], ".nii.gz", case_ids=["b", "a"], num_processes=1)
    assert [c["case"] for c in s["metric_per_case"]] == ["a", "b"]


def test_missing_prediction_refused_and_nothing_written(folders, tmp_path):
    ref_dir, pred_dir = folders
    (pred_dir / "b.nii.gz").unlink()
    with pytest.raises(EvaluationError, match=r"missing prediction.*b\.nii\.gz.*--chill"):
        evaluate_folders(ref_dir, pred_dir, [(1,)], ".nii.gz", output_json=tmp_path / "s.json", num_processes=1)
    assert not (tmp_path / "s.json").exists()


def test_chill_skips_references_without_a_prediction(folders, tmp_path):
    ref_dir, pred_dir = folders
    (pred_dir / "b.nii.gz").unlink()
    s = evaluate_folders(ref_dir, pred_dir, [(1,)], ".nii.gz", output_json=tmp_path / "s.json", num_processes=1,
                         chill=True)
    assert [c["case"] for c in s["metric_per_case"]] == ["a", "c"]
    assert s["settings"]["skipped_references"] == ["b"]
    assert json.loads((tmp_path / "s.json").read_text())["settings"]["skipped_references"] == ["b"]
    _write(pred_dir / "zzz.nii.gz", np.zeros((8, 12, 12)))  # a prediction still needs its reference
    with pytest.raises(EvaluationError, match="without a reference.*zzz"):
        evaluate_folders(ref_dir, pred_dir, [(1,)], ".nii.gz", num_processes=1, chill=True)
    for f in pred_dir.glob("*.nii.gz"):
        f.unlink()
    with pytest.raises(EvaluationError, match="no prediction in .* 3 reference case"):
        evaluate_folders(ref_dir, pred_dir, [(1,)], ".nii.gz", num_processes=1, chill=True)


def test_prediction_without_reference_refused(folders):
    ref_dir, pred_dir = folders
    _write(pred_dir / "zzz.nii.gz", np.zeros((8, 12, 12)))
    with pytest.raises(EvaluationError, match="without a reference.*zzz"):
        evaluate_folders(ref_dir, pred_dir, [(1,)], ".nii.gz", num_processes=1)
    with pytest.raises(EvaluationError, match="no reference.*zzz"):
        evaluate_folders(ref_dir, pred_dir, [(1,)], ".nii.gz", case_ids=["zzz"], num_processes=1)


def test_shape_and_spacing_mismatch_refused(folders, tmp_path):
    ref_dir, pred_dir = folders
    _write(pred_dir / "a.nii.gz", np.zeros((8, 12, 11)))
    with pytest.raises(EvaluationError, match=r"shape mismatch.*a\.nii\.gz.*a\.nii\.gz"):
        evaluate_folders(ref_dir, pred_dir, [(1,)], ".nii.gz", num_processes=1)
    _write(pred_dir / "a.nii.gz", _case(0)[1], spacing=(1.0, 1.0, 3.0))
    with pytest.raises(EvaluationError, match="spacing mismatch"):
        evaluate_folders(ref_dir, pred_dir, [(1,)], ".nii.gz", output_csv=tmp_path / "c.csv", num_processes=1)
    assert not (tmp_path / "c.csv").exists()


def test_missing_folder_and_no_regions(tmp_path, folders):
    ref_dir, pred_dir = folders
    with pytest.raises(EvaluationError, match="does not exist"):
        evaluate_folders(tmp_path / "nope", pred_dir, [(1,)], ".nii.gz")
    with pytest.raises(EvaluationError, match="no labels"):
        evaluate_folders(ref_dir, pred_dir, [], ".nii.gz")


def test_parallel_equals_serial(folders):
    ref_dir, pred_dir = folders
    serial = evaluate_folders(ref_dir, pred_dir, [(1,), (2,)], ".nii.gz", num_processes=1)
    parallel = evaluate_folders(ref_dir, pred_dir, [(1,), (2,)], ".nii.gz", num_processes=2)
    assert serial["metric_per_case"] == parallel["metric_per_case"]


def test_absent_label_mean_is_nan_not_error(folders):
    ref_dir, pred_dir = folders
    s = evaluate_folders(ref_dir, pred_dir, [(1,), (7,)], ".nii.gz", num_processes=1)
    assert math.isnan(s["mean"]["7"]["Dice"])
    assert s["foreground_mean"]["Dice"] == pytest.approx(s["mean"]["1"]["Dice"])
