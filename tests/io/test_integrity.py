"""One test per bad input: the CLI exits 1 naming the file and problem, and writes nothing."""
import json

import numpy as np
import pytest
import SimpleITK as sitk

from mednext_fw.cli.plan_and_preprocess import main
from mednext_fw.io.integrity import IntegrityError, verify_dataset
from tests.helpers_data import make_dataset, write_nifti


def _edit_json(d, **changes):
    ds = json.loads((d / "dataset.json").read_text())
    ds.update(changes)
    (d / "dataset.json").write_text(json.dumps(ds))


def _break_missing_label(d):
    (d / "labelsTr" / "case1.nii.gz").unlink()
    return "case1_0000.nii.gz: image without a label"


def _break_missing_channel(d):
    _edit_json(d, channel_names={"0": "T1", "1": "T2"})
    return "case0_0001.nii.gz: missing"


def _break_extra_channel(d):
    write_nifti(np.zeros((12, 14, 16), np.float32), d / "imagesTr" / "case2_0001.nii.gz")
    return "case2_0001.nii.gz: unexpected channel 1"


def _break_shape(d):
    write_nifti(np.zeros((12, 14, 15), np.uint8), d / "labelsTr" / "case0.nii.gz")
    return r"case0_0000.nii.gz: shape \(12, 14, 16\) differs from its label"


def _break_spacing(d):
    write_nifti(np.zeros((12, 14, 16), np.uint8), d / "labelsTr" / "case2.nii.gz", spacing=(1.0, 1.0, 2.0))
    return "case2_0000.nii.gz: spacing"


def _break_label_value(d):
    seg = np.zeros((12, 14, 16), np.uint8)
    seg[0, 0, 0] = 3
    write_nifti(seg, d / "labelsTr" / "case1.nii.gz")
    return r"case1.nii.gz: label value\(s\) \[3\] are not declared"


def _break_nan(d):
    # NRRD: SimpleITK's NIfTI reader turns NaN into 0 (harmless), NRRD keeps it.
    d2 = make_dataset(d.parent, "Dataset007_Nrrd", ending=".nrrd")
    img = np.zeros((12, 14, 16), np.float32)
    img[2, 2, 2] = np.inf
    write_nifti(img, d2 / "imagesTr" / "case0_0000.nrrd")
    import shutil

    shutil.rmtree(d)
    return "case0_0000.nrrd: contains NaN or Inf"


def _break_consecutive(d):
    _edit_json(d, labels={"background": 0, "blob": 2})
    return r"consecutive 0..N, got \[0, 2\]"


def _break_corrupt(d):
    (d / "imagesTr" / "case1_0000.nii.gz").write_bytes(b"\x1f\x8bnot really a nifti")
    return "case1_0000.nii.gz: (cannot be read|the compressed file is truncated or corrupt)"


def _break_truncated(d):
    # SimpleITK reads a cut-off .nii.gz without complaint (zeros fill the rest): a silent bad download.
    path = d / "imagesTr" / "case1_0000.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "case1_0000.nii.gz: the compressed file is truncated"


def _break_4d(d):
    img = sitk.JoinSeries([sitk.GetImageFromArray(np.zeros((12, 14, 16), np.float32))] * 2)
    sitk.WriteImage(img, str(d / "imagesTr" / "case2_0000.nii.gz"))
    return "case2_0000.nii.gz: is a 4D image"


def _break_2d_3d(d):
    img = sitk.GetImageFromArray(np.zeros((14, 16), np.float32))
    sitk.WriteImage(img, str(d / "imagesTr" / "case0_0000.nii.gz"))
    return "case0_0000.nii.gz: is 2D but its label case0.nii.gz is 3D"


def _break_num_training(d):
    _edit_json(d, numTraining=7)
    return "numTraining is 7 but labelsTr holds 3"


def _break_json(d):
    (d / "dataset.json").write_text("{broken")
    return "dataset.json: not valid JSON"


BREAKERS = [_break_missing_label, _break_missing_channel, _break_extra_channel, _break_shape, _break_spacing,
            _break_label_value, _break_nan, _break_consecutive, _break_corrupt, _break_truncated, _break_4d, _break_2d_3d,
            _break_num_training, _break_json]


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__[7:])
def test_bad_input_is_reported_and_nothing_written(roots, capsys, breaker):
    d = make_dataset(roots["raw"])
    expected = breaker(d)
    assert main(["-d", "5" if d.is_dir() else "7", "-np", "1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    import re

    assert re.search(expected, err), err
    assert list(roots["preprocessed"].iterdir()) == []


def test_all_problems_reported_at_once(roots):
    d = make_dataset(roots["raw"])
    _break_label_value(d)
    _break_shape(d)
    with pytest.raises(IntegrityError) as info:
        verify_dataset(d, num_processes=1)
    assert len(info.value.problems) == 2


def test_clean_dataset_passes(roots):
    d = make_dataset(roots["raw"])
    assert verify_dataset(d, num_processes=2).num_training == 3
