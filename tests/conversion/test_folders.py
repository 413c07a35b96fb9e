import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mednext_fw.conversion.common import ConversionError
from mednext_fw.conversion.folders import default_channel_names, folders_plan, group_images, labels_from_files, \
    labels_from_json
from tests.conversion.sources import stack_4d


def test_group_images():
    files = [Path(n) for n in ("a.nii.gz", "b_0000.nii.gz", "b_0001.nii.gz", "c_0001.nii.gz")]
    assert group_images(files, {"a", "b", "c_0001"}) == {
        "a": (Path("a.nii.gz"),), "b": (Path("b_0000.nii.gz"), Path("b_0001.nii.gz")),
        "c_0001": (Path("c_0001.nii.gz"),)}
    with pytest.raises(ConversionError, match="numbered _0000.._0000"):
        group_images([Path("x_0001.nii.gz")], {"x"})
    with pytest.raises(ConversionError, match="keep one form"):
        group_images([Path("x.nii.gz"), Path("x_0000.nii.gz")], None)
    assert default_channel_names(2) == {"0": "image_0", "1": "image_1"}


def _seg(path, values):
    sitk.WriteImage(sitk.GetImageFromArray(np.array(values, np.uint8).reshape(1, 1, -1)), str(path))
    return path


def test_labels_from_files_and_json(tmp_path):
    a, b = _seg(tmp_path / "a.nii.gz", [0, 1, 1]), _seg(tmp_path / "b.nii.gz", [0, 2])
    assert labels_from_files([a, b]) == {"background": 0, "label_1": 1, "label_2": 2}
    with pytest.raises(ConversionError, match=r"not consecutive; missing \[1\]"):
        labels_from_files([b])
    j = tmp_path / "labels.json"
    j.write_text(json.dumps({"tumour": 1, "edema": 2}))
    assert labels_from_json(j) == ({"background": 0, "tumour": 1, "edema": 2}, None)
    j.write_text(json.dumps({"labels": {"background": 0, "whole": [1, 2], "core": 2}, "regions_class_order": [1, 2]}))
    assert labels_from_json(j)[1] == [1, 2]
    j.write_text(json.dumps({"background": 1}))
    with pytest.raises(ConversionError, match="'background' to 0"):
        labels_from_json(j)


def test_plan_plain_and_channel_forms(folders_src, shared_data, tmp_path):
    images, labels = folders_src
    plan = folders_plan(images, labels, "Brains")
    assert [c.case_id for c in plan.training] == ["colin27_2mm", "mni152_3mm"]
    assert plan.dataset.channel_names == {"0": "image"}
    assert plan.dataset.labels == {"background": 0, "label_1": 1}
    plan = folders_plan(images, labels, "Brains", channel_names=["T1"], labels_json=None)
    assert plan.dataset.channel_names == {"0": "T1"}
    # a 4D file is counted as several channels
    four = tmp_path / "four"
    four.mkdir()
    sitk.WriteImage(stack_4d(sitk.ReadImage(str(images / "mni152_3mm.nii.gz"))), str(four / "mni152_3mm.nii.gz"))
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "mni152_3mm.nii.gz").write_bytes((labels / "mni152_3mm.nii.gz").read_bytes())
    assert folders_plan(four, lab, "Four").dataset.channel_names == {"0": "image_0", "1": "image_1"}
