import os

import numpy as np
import pytest

from mednext_fw.io.atomic import temporary_path
from mednext_fw.io.image_io import ImageProperties
from mednext_fw.preprocessing.case_properties import CaseProperties
from mednext_fw.preprocessing.folder import FORMAT_VERSION, PreprocessedDataError, PreprocessedFolder


def _props(case):
    return CaseProperties(case, ImageProperties(spacing=[1.0, 1.0, 1.0]), [4, 4, 4], [[0, 4]] * 3, [4, 4, 4],
                          [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [2, 2, 2])


def _folder(tmp_path, cases=("a", "b", "c")):
    folder = PreprocessedFolder(tmp_path / "Dataset009_X").configuration("plans_3d_fullres", "3d_fullres")
    folder.prepare({"spacing": [2, 2, 2]}, list(cases))
    for c in cases:
        folder.write_case(c, np.zeros((1, 2, 2, 2), np.float32), np.zeros((1, 2, 2, 2), np.int16), _props(c))
    return folder


def test_dataset_level_names(tmp_path):
    pre = PreprocessedFolder(tmp_path / "Dataset009_X")
    assert pre.plans_file.name == "plans.json" and pre.splits_file.name == "splits_final.json"
    assert pre.gt_dir.name == "gt_segmentations" and pre.dataset_file.name == "dataset.json"
    assert pre.configuration("d").path == pre.path / "d"


def test_case_properties_round_trip_with_resampled_geometry(tmp_path):
    folder = _folder(tmp_path, ["a"])
    props = folder.read_properties("a")
    assert props.spacing_after_resampling == [2.0, 2.0, 2.0] and props.shape_after_resampling == [2, 2, 2]
    assert folder.read_snapshot()["format"] == FORMAT_VERSION


def test_incomplete_cases_are_named_and_refused(tmp_path):
    folder = _folder(tmp_path)
    # What an interrupted preprocess can leave: the image array but neither labels nor properties.
    folder.seg_file("b").unlink()
    folder.properties_file("b").unlink()
    assert folder.cases() == ["a", "c"] and folder.incomplete_cases() == ["b"]
    with pytest.raises(PreprocessedDataError, match=r"1 case\(s\) are not completely preprocessed \(b\).*"
                                                    r"mednext_plan_and_preprocess -d Dataset009_X -c 3d_fullres"):
        folder.require_complete()


def test_expected_case_never_started_is_incomplete(tmp_path):
    folder = _folder(tmp_path, ["a"])
    folder.prepare({"spacing": [2, 2, 2]}, ["a", "z"])  # same plans, one more raw case
    assert folder.cases() == ["a"] and folder.incomplete_cases() == ["z"]
    with pytest.raises(PreprocessedDataError, match=r"\(z\)"):
        folder.require_complete()


def test_split_naming_a_case_without_data_is_refused(tmp_path):
    folder = _folder(tmp_path, ["a", "b"])
    assert folder.require_complete(["a"]) == ["a", "b"]
    with pytest.raises(PreprocessedDataError, match=r"\(q\)"):
        folder.require_complete(["a", "q"])


def test_temporaries_are_never_cases_and_are_swept(tmp_path):
    folder = _folder(tmp_path, ["a"])
    dead = folder.path / ".b.tmp-1a2b3c4d.npy"  # old-style name of a killed writer: always stale
    dead.write_bytes(b"\x93NUMPY partial")
    live = temporary_path(folder.data_file("c"))  # this process is alive: not stale
    live.write_bytes(b"")
    assert folder.cases() == ["a"] and folder.incomplete_cases() == []
    folder.prepare({"spacing": [2, 2, 2]}, ["a"])  # every run starts with a sweep
    assert not dead.exists() and live.exists()
    os.unlink(live)


def test_changed_plans_wipe_the_old_cases(tmp_path):
    folder = _folder(tmp_path, ["a"])
    assert folder.prepare({"spacing": [3, 3, 3]}, ["a"]) is not None
    assert folder.cases() == [] and folder.incomplete_cases() == ["a"]


def test_unreadable_array_names_the_file_and_the_fix(tmp_path):
    folder = _folder(tmp_path, ["a"])
    folder.data_file("a").write_bytes(b"garbage")
    with pytest.raises(PreprocessedDataError, match=r"a\.npy: cannot read.*re-run mednext_plan_and_preprocess"):
        folder.read_data("a")


def test_empty_or_missing_folder(tmp_path):
    folder = PreprocessedFolder(tmp_path / "Dataset009_X").configuration("nothing", "2d")
    with pytest.raises(PreprocessedDataError, match="no preprocessed cases"):
        folder.require_complete()
