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


def _patch_nifti_header(path, offset, fmt, value):
    """Overwrite one header field of a .nii.gz in place (what a broken converter writes)."""
    import gzip
    import struct

    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(gzip.compress(bytes(raw)))


def _break_nan_nifti(d):
    # SimpleITK's NIfTI reader turns these into 0; the raw read (nibabel) sees them.
    img = np.full((12, 14, 16), 10.0, np.float32)
    img[2, 2, 2] = np.nan
    img[3, 3, 3] = np.inf
    write_nifti(img, d / "imagesTr" / "case1_0000.nii.gz")
    return r"case1_0000.nii.gz: contains NaN or Inf values \(2 voxel\(s\)\)"


def _break_zero_pixdim(d):
    _patch_nifti_header(d / "imagesTr" / "case2_0000.nii.gz", 80 + 4 * 2, "<f", 0.0)  # pixdim[3]
    return r"case2_0000.nii.gz: voxel spacing \(pixdim\) .* is zero or not finite on axis \[2\]"


def _break_nan_pixdim(d):
    _patch_nifti_header(d / "labelsTr" / "case0.nii.gz", 80, "<f", float("nan"))  # pixdim[1]
    return r"case0.nii.gz: voxel spacing \(pixdim\) .* is zero or not finite on axis \[0\]"


def _break_corrupt_header(d):
    _patch_nifti_header(d / "imagesTr" / "case0_0000.nii.gz", 70, "<h", 9999)  # no such datatype code
    return "case0_0000.nii.gz: cannot be read"


def _break_wrong_ending(d):
    img = sitk.ReadImage(str(d / "imagesTr" / "case1_0000.nii.gz"))
    sitk.WriteImage(img, str(d / "imagesTr" / "case1_0000.nii"))
    (d / "imagesTr" / "case1_0000.nii.gz").unlink()
    sitk.WriteImage(sitk.ReadImage(str(d / "labelsTr" / "case2.nii.gz")), str(d / "labelsTr" / "case2.mha"))
    return r"(?s)case1_0000.nii: its ending differs from dataset.json's file_ending '.nii.gz'.*case2.mha: its ending"


def _break_channels_name_to_index(d):
    _edit_json(d, channel_names={"MRI": 0})
    return r"'channel_names' is written name -> index"


def _break_null_num_training(d):
    _edit_json(d, numTraining=None)
    return r"'numTraining' must be the number of training cases .* got null"


def _break_duplicate_label_value(d):
    _edit_json(d, labels={"background": 0, "blob": 1, "lesion": 1})
    return r"'labels' gives value 1 to both 'blob' and 'lesion'"


def _break_label_as_string(d):
    _edit_json(d, labels={"background": 0, "blob": "1"})
    return r"'labels' entry 'blob' must be a label value"


def _break_vector_label(d):
    seg = sitk.GetImageFromArray(np.zeros((12, 14, 16, 3), np.uint8), isVector=True)
    sitk.WriteImage(seg, str(d / "labelsTr" / "case1.nii.gz"))
    return "case1.nii.gz: has 3 components per voxel"


def _break_2d_and_3d_cases(d):
    write_nifti(np.zeros((14, 16), np.float32), d / "imagesTr" / "case0_0000.nii.gz")
    write_nifti(np.zeros((14, 16), np.uint8), d / "labelsTr" / "case0.nii.gz")
    return r"mixture of 2D and 3D cases: 2D \['case0'\], 3D \['case1', 'case2'\]"


def _break_channel_shape(d):
    _edit_json(d, channel_names={"0": "T1", "1": "T2"})
    for i in range(3):
        shape = (12, 14, 16) if i != 2 else (12, 14, 17)
        write_nifti(np.ones(shape, np.float32), d / "imagesTr" / f"case{i}_0001.nii.gz")
    return r"case2_0001.nii.gz: shape \(12, 14, 17\) differs from its label"


def _break_broken_symlink(d):
    (d / "labelsTr" / "case1.nii.gz").unlink()
    (d / "labelsTr" / "case1.nii.gz").symlink_to(d / "nowhere" / "case1.nii.gz")
    return r"case1.nii.gz: broken symbolic link"


BREAKERS = [_break_missing_label, _break_missing_channel, _break_extra_channel, _break_shape, _break_spacing,
            _break_label_value, _break_nan, _break_consecutive, _break_corrupt, _break_truncated, _break_4d, _break_2d_3d,
            _break_num_training, _break_json, _break_nan_nifti, _break_zero_pixdim, _break_nan_pixdim,
            _break_corrupt_header, _break_wrong_ending, _break_channels_name_to_index, _break_null_num_training,
            _break_duplicate_label_value, _break_label_as_string, _break_vector_label, _break_2d_and_3d_cases,
            _break_channel_shape, _break_broken_symlink]


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


@pytest.mark.parametrize("breaker", [_break_channels_name_to_index, _break_null_num_training, _break_zero_pixdim],
                         ids=lambda f: f.__name__[7:])
def test_refused_before_anything_is_written_even_without_the_check(roots, capsys, breaker):
    # --no-verify skips the integrity check, not the reading of dataset.json and the headers.
    d = make_dataset(roots["raw"])
    expected = breaker(d)
    assert main(["-d", "5", "-np", "1", "--no-verify"]) == 1
    import re

    err = capsys.readouterr().err
    assert "Traceback" not in err and re.search(expected, err), err
    assert not any(p.is_file() for p in roots["preprocessed"].rglob("*.npy"))


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
