"""Ensembling prediction folders: the output is the average of the members' probabilities, on the
members' own geometry; every inconsistency between the folders is refused before anything is written."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from mednext_fw.inference.ensemble import EnsembleError, ensemble_folders, probabilities_to_labels
from mednext_fw.io.dataset_json import DatasetJson

REAL = "Dataset001_BrainMask/labelsTr/mni152_3mm.nii.gz"


def _member(folder, shared_data, seed, cases=("a", "b"), classes=3):
    folder.mkdir(parents=True)
    ds = json.loads((shared_data / "Dataset001_BrainMask" / "dataset.json").read_text())
    ds["labels"] = {"background": 0, "brain": 1, "rim": 2}
    (folder / "dataset.json").write_text(json.dumps(ds))
    template = sitk.ReadImage(str(shared_data / REAL))
    shape = sitk.GetArrayFromImage(template).shape
    rng = np.random.default_rng(seed)
    out = {}
    for case in cases:
        p = rng.random((classes, *shape)).astype(np.float32)
        p /= p.sum(0, keepdims=True)
        np.savez_compressed(folder / f"{case}.npz", probabilities=p)
        shutil.copy(shared_data / REAL, folder / f"{case}.nii.gz")  # geometry carrier, like a real prediction
        out[case] = p
    return out


def test_output_is_the_average_of_the_members(tmp_path, shared_data):
    a = _member(tmp_path / "a", shared_data, 1)
    b = _member(tmp_path / "b", shared_data, 2)
    outputs = ensemble_folders([tmp_path / "a", tmp_path / "b"], tmp_path / "out", save_probabilities=True,
                               progress=False)
    assert [p.name for p in outputs] == ["a.nii.gz", "b.nii.gz"]
    ref = sitk.ReadImage(str(shared_data / REAL))
    for case in ("a", "b"):
        mean = (a[case] + b[case]) / 2
        with np.load(tmp_path / "out" / f"{case}.npz") as f:
            np.testing.assert_allclose(f["probabilities"], mean, rtol=1e-6)
        img = sitk.ReadImage(str(tmp_path / "out" / f"{case}.nii.gz"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(img), mean.argmax(0))
        assert img.GetSpacing() == ref.GetSpacing() and img.GetOrigin() == ref.GetOrigin()
        assert img.GetDirection() == ref.GetDirection()


def test_rerun_skips_finished_cases(tmp_path, shared_data):
    _member(tmp_path / "a", shared_data, 1)
    _member(tmp_path / "b", shared_data, 2)
    ensemble_folders([tmp_path / "a", tmp_path / "b"], tmp_path / "out", progress=False)
    done = tmp_path / "out" / "a.nii.gz"
    done.write_bytes(b"kept")
    ensemble_folders([tmp_path / "a", tmp_path / "b"], tmp_path / "out", progress=False)
    assert done.read_bytes() == b"kept"


def test_regions_are_painted_in_order():
    ds = DatasetJson.from_dict({"channel_names": {"0": "T1"}, "labels": {"background": 0, "whole": [1, 2], "core": 2},
                                "regions_class_order": [1, 2], "numTraining": 1, "file_ending": ".nii.gz"})
    probs = np.array([[0.9, 0.9, 0.2], [0.1, 0.7, 0.1]], np.float32)
    np.testing.assert_array_equal(probabilities_to_labels(probs, ds), [1, 2, 0])


def test_differing_case_sets_are_refused(tmp_path, shared_data):
    _member(tmp_path / "a", shared_data, 1, cases=("a", "b"))
    _member(tmp_path / "b", shared_data, 2, cases=("a", "c"))
    with pytest.raises(EnsembleError, match=r"different cases.*only in the first: b; only in the second: c"):
        ensemble_folders([tmp_path / "a", tmp_path / "b"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_probabilities_are_named(tmp_path, shared_data):
    _member(tmp_path / "a", shared_data, 1)
    _member(tmp_path / "b", shared_data, 2)
    (tmp_path / "b" / "b.npz").unlink()
    with pytest.raises(EnsembleError, match=r"missing probabilities.*b/b\.npz"):
        ensemble_folders([tmp_path / "a", tmp_path / "b"], tmp_path / "out", progress=False)


def test_mismatched_shapes_are_refused(tmp_path, shared_data):
    _member(tmp_path / "a", shared_data, 1)
    _member(tmp_path / "b", shared_data, 2, classes=2)
    with pytest.raises(EnsembleError, match="differ"):
        ensemble_folders([tmp_path / "a", tmp_path / "b"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "a.nii.gz").exists()


def test_one_folder_is_not_an_ensemble(tmp_path, shared_data):
    _member(tmp_path / "a", shared_data, 1)
    with pytest.raises(EnsembleError, match="at least two"):
        ensemble_folders([tmp_path / "a"], tmp_path / "out", progress=False)
