import json
import shutil

import pytest
from scipy import ndimage

from mednext_fw.cli.evaluate import main
from mednext_fw.io.image_io import read_seg, write_seg


@pytest.fixture
def brain_pred(brain_raw, tmp_path):
    """Reference = the two coarse brain masks; prediction = the masks eroded once."""
    ref_dir, pred_dir = tmp_path / "ref", tmp_path / "pred"
    ref_dir.mkdir()
    for case in ("mni152_3mm", "mni152_2mm"):
        src = brain_raw / "labelsTr" / f"{case}.nii.gz"
        shutil.copy(src, ref_dir / src.name)
        seg, props = read_seg(src)
        write_seg(ndimage.binary_erosion(seg[0] > 0)[None], props, pred_dir / src.name)
    return ref_dir, pred_dir


def test_dataset_mode_writes_defaults_and_prints_table(brain_pred, capsys):
    ref_dir, pred_dir = brain_pred
    assert main(["-ref", str(ref_dir), "-pred", str(pred_dir), "-d", "1", "-np", "1"]) == 0
    summary = json.loads((pred_dir / "summary.json").read_text())
    assert [c["case"] for c in summary["metric_per_case"]] == ["mni152_2mm", "mni152_3mm"]
    assert 0.8 < summary["mean"]["1"]["Dice"] < 1.0
    # Eroding by one voxel moves the surface by exactly one voxel: 2 or 3 mm, beyond a 1 mm tolerance.
    assert summary["mean"]["1"]["NSD"] < 0.2
    assert (pred_dir / "summary.csv").read_text().startswith("case,region,Dice")
    out = capsys.readouterr().out
    assert "foreground mean" in out and "NSD@1mm" in out


def test_label_mode_with_options(brain_pred, tmp_path):
    ref_dir, pred_dir = brain_pred
    out_json, out_csv = tmp_path / "s.json", tmp_path / "c.csv"
    rc = main(["-ref", str(ref_dir), "-pred", str(pred_dir), "-l", "1", "0,1", "--tolerance-mm", "5.2",
               "-o", str(out_json), "--csv", str(out_csv), "-np", "1"])
    assert rc == 0 and out_csv.is_file()
    summary = json.loads(out_json.read_text())
    assert set(summary["mean"]) == {"1", "(0, 1)"}
    per_case = {c["case"]: c["metrics"]["1"]["NSD"] for c in summary["metric_per_case"]}
    # 5.2 mm covers 3 mm * sqrt(3); only ref surface in structures thinner than the erosion stays out.
    assert per_case["mni152_3mm"] > 0.99 and per_case["mni152_2mm"] > 0.99
    assert not (pred_dir / "summary.json").exists()


@pytest.mark.parametrize("problem", ["missing", "shape", "spacing", "no_dataset", "bad_label"])
def test_user_errors_exit_nonzero_without_traceback(brain_pred, problem, capsys):
    ref_dir, pred_dir = brain_pred
    args = ["-ref", str(ref_dir), "-pred", str(pred_dir), "-l", "1", "-np", "1"]
    seg, props = read_seg(pred_dir / "mni152_3mm.nii.gz")
    if problem == "missing":
        (pred_dir / "mni152_3mm.nii.gz").unlink()
    elif problem == "shape":
        write_seg(seg[:, :-1], props, pred_dir / "mni152_3mm.nii.gz")
    elif problem == "spacing":
        props.sitk_spacing = [2.0, 2.0, 2.0]
        write_seg(seg, props, pred_dir / "mni152_3mm.nii.gz")
    elif problem == "no_dataset":
        args = ["-ref", str(ref_dir), "-pred", str(pred_dir), "-d", "Nope"]
    else:
        args[-3] = "one"
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("mednext_evaluate: error:") and "Traceback" not in err
    if problem in ("missing", "shape", "spacing"):
        assert "mni152_3mm.nii.gz" in err
    assert not (pred_dir / "summary.json").exists()


def test_needs_labels_or_dataset(brain_pred):
    ref_dir, pred_dir = brain_pred
    with pytest.raises(SystemExit) as exc:
        main(["-ref", str(ref_dir), "-pred", str(pred_dir)])
    assert exc.value.code != 0


def test_mixed_file_endings_refused_in_label_mode(brain_pred, capsys):
    ref_dir, pred_dir = brain_pred
    seg, props = read_seg(ref_dir / "mni152_3mm.nii.gz")
    write_seg(seg, props, ref_dir / "extra.nrrd")
    assert main(["-ref", str(ref_dir), "-pred", str(pred_dir), "-l", "1"]) == 1
    assert "mixes file endings" in capsys.readouterr().err


def test_chill_evaluates_the_predicted_cases_and_says_which_were_skipped(brain_pred, capsys):
    ref_dir, pred_dir = brain_pred
    (pred_dir / "mni152_3mm.nii.gz").unlink()
    assert main(["-ref", str(ref_dir), "-pred", str(pred_dir), "-d", "1", "-np", "1", "--chill"]) == 0
    summary = json.loads((pred_dir / "summary.json").read_text())
    assert [c["case"] for c in summary["metric_per_case"]] == ["mni152_2mm"]
    assert summary["settings"]["skipped_references"] == ["mni152_3mm"]
    assert "1 reference case(s) without a prediction skipped: mni152_3mm" in capsys.readouterr().out
