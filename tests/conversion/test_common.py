from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mednext_fw.conversion.common import CaseSpec, ConversionError, ConversionPlan, check_case, common_ending, \
    list_files, match_pairs, split_ending
from mednext_fw.io.dataset_json import DatasetJson


def _img(path: Path, shape=(4, 5, 6), spacing=(1.0, 1.0, 1.0), dim4: int = 0) -> Path:
    img = sitk.GetImageFromArray(np.zeros(shape, np.float32))
    img.SetSpacing(spacing)
    if dim4:
        img = sitk.JoinSeries([img] * dim4)
    sitk.WriteImage(img, str(path))
    return path


def test_list_files_skips_hidden_and_macos_forks(tmp_path):
    for n in ("a.nii.gz", "._a.nii.gz", ".DS_Store", "b.nii.gz"):
        (tmp_path / n).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in list_files(tmp_path)] == ["a.nii.gz", "b.nii.gz"]
    with pytest.raises(ConversionError, match="folder not found"):
        list_files(tmp_path / "missing")


def test_endings(tmp_path):
    assert split_ending(Path("img0001.nii.gz")) == ("img0001", ".nii.gz")
    with pytest.raises(ConversionError, match="unsupported file type"):
        split_ending(Path("notes.txt"))
    with pytest.raises(ConversionError, match="mixed file types"):
        common_ending([Path("a.nii.gz"), Path("b.nrrd")], "src")


def test_match_pairs_names_both_sides():
    with pytest.raises(ConversionError) as exc:
        match_pairs({"a": Path("a.nii.gz"), "b": Path("b.nii.gz")}, {"a": Path("a.nii.gz"), "c": Path("c.nii.gz")},
                    Path("imgs"), Path("labs"))
    assert "b.nii.gz" in str(exc.value) and "c.nii.gz" in str(exc.value)


def test_check_case_shapes_spacings_and_channels(tmp_path):
    img = _img(tmp_path / "i.nii.gz")
    check_case(CaseSpec("i", (img,), _img(tmp_path / "ok.nii.gz")), 1)
    with pytest.raises(ConversionError, match=r"bad_shape.nii.gz: shape \(6, 5, 5\) does not match"):
        check_case(CaseSpec("i", (img,), _img(tmp_path / "bad_shape.nii.gz", shape=(5, 5, 6))), 1)
    with pytest.raises(ConversionError, match="bad_sp.nii.gz: spacing"):
        check_case(CaseSpec("i", (img,), _img(tmp_path / "bad_sp.nii.gz", spacing=(1.0, 1.0, 2.0))), 1)
    with pytest.raises(ConversionError, match="expected 2"):
        check_case(CaseSpec("i", (img,), None), 2)
    four = _img(tmp_path / "four.nii.gz", dim4=3)
    check_case(CaseSpec("f", (four,), _img(tmp_path / "l.nii.gz")), 3)
    with pytest.raises(ConversionError, match="4D image with 3 frame"):
        check_case(CaseSpec("f", (four,), None), 2)
    with pytest.raises(ConversionError, match="cannot be read"):
        (tmp_path / "broken.nii.gz").write_bytes(b"not an image")
        check_case(CaseSpec("b", (tmp_path / "broken.nii.gz",), None), 1)


def test_plan_rejects_bad_names_and_empty():
    ds = DatasetJson({"0": "CT"}, {"background": 0, "x": 1}, ".nii.gz", 0)
    with pytest.raises(ConversionError, match="dataset name"):
        ConversionPlan("bad/name", ds, [CaseSpec("a", (Path("a"),), Path("b"))])
    with pytest.raises(ConversionError, match="no training cases"):
        ConversionPlan("Good", ds, [])
    plan = ConversionPlan("Good", ds, [CaseSpec("a", (Path("a"),), Path("b"))])
    assert plan.dataset.num_training == 1
