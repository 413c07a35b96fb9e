"""mednext_convert end to end: real volumes in BTCV / Decathlon / folder shape -> raw layout -> planning."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

from mednext_fw.cli.convert import main
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.lookup import find_dataset
from tests.conversion import sources
from tests.conversion.sources import CASES, brain, copy_tree

# 6 mm isotropic keeps planning and preprocessing of the 2-3 mm volumes to a second or two.
FAST_PLAN = ["--spacing", "6", "6", "6", "-np", "1", "-c", "3d_fullres"]


@pytest.fixture(scope="module")
def btcv_src(shared_data, tmp_path_factory):
    return sources.make_btcv(shared_data, tmp_path_factory.mktemp("btcv_src"))


@pytest.fixture(scope="module")
def msd_src(shared_data, tmp_path_factory):
    return sources.make_msd(shared_data, tmp_path_factory.mktemp("msd_src"))


@pytest.fixture(scope="module")
def folders_src(shared_data, tmp_path_factory):
    return sources.make_folders(shared_data, tmp_path_factory.mktemp("folders_src"))


def _plan_and_preprocess(query: str, preprocessed, cases: list[str]):
    from mednext_fw.cli.plan_and_preprocess import main as plan_main
    from mednext_fw.planners.plans import Plans

    assert plan_main(["-d", query] + FAST_PLAN) == 0
    out = preprocessed / find_dataset(query)
    config = Plans.load(out / "plans.json").configurations["3d_fullres"]
    assert config.spacing == [6.0, 6.0, 6.0]
    channels = DatasetJson.load(out / "dataset.json").channel_names
    assert config.normalization == ["ct" if channels[k] == "CT" else "zscore" for k in sorted(channels)]
    arrays = out / config.data_identifier
    assert sorted(p.name for p in arrays.glob("*.npy") if not p.name.endswith("_seg.npy")) == \
        [f"{c}.npy" for c in cases]
    return arrays


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def _nothing_written(root):
    return list(root.iterdir()) == []


def test_btcv_converts_plans_and_resolves_by_name(roots, btcv_src, capsys):
    assert main(["btcv", str(btcv_src)]) == 0
    out = roots["raw"] / "Dataset001_BTCV"
    assert _files(out / "imagesTr") == ["img0001_0000.nii.gz", "img0002_0000.nii.gz", "img0003_0000.nii.gz"]
    assert _files(out / "labelsTr") == ["img0001.nii.gz", "img0002.nii.gz", "img0003.nii.gz"]
    assert _files(out / "imagesTs") == ["img0061_0000.nii.gz"]
    ds = DatasetJson.load(out / "dataset.json")
    assert ds.channel_names == {"0": "CT"} and ds.num_training == 3 and ds.file_ending == ".nii.gz"
    assert ds.labels["spleen"] == 1 and ds.labels["pancreas"] == 11 and ds.labels["left adrenal gland"] == 13
    assert len(ds.labels) == 14
    assert find_dataset("BTCV") == "Dataset001_BTCV"

    _plan_and_preprocess("BTCV", roots["preprocessed"], ["img0001", "img0002", "img0003"])
    pre = roots["preprocessed"] / "Dataset001_BTCV"
    assert (pre / "plans.json").is_file() and (pre / "fingerprint.json").is_file()
    assert sorted(p.name for p in (pre / "gt_segmentations").iterdir()) == _files(out / "labelsTr")
    assert find_dataset("BTCV") == "Dataset001_BTCV"  # still unique across raw + preprocessed

    capsys.readouterr()
    assert main(["btcv", str(btcv_src)]) == 1  # a re-run refuses
    err = capsys.readouterr().err
    assert "Dataset001_BTCV already exists" in err and "--overwrite" in err and "Traceback" not in err
    assert main(["btcv", str(btcv_src), "--overwrite"]) == 0
    assert sorted(p.name for p in roots["raw"].iterdir()) == ["Dataset001_BTCV"]


def test_msd_splits_4d_and_plans(roots, msd_src, shared_data):
    assert main(["msd", str(msd_src)]) == 0
    out = roots["raw"] / "Dataset005_Brain"  # the task number is kept when free
    assert _files(out / "imagesTr") == ["brain_001_0000.nii.gz", "brain_001_0001.nii.gz",
                                        "brain_002_0000.nii.gz", "brain_002_0001.nii.gz"]
    assert _files(out / "labelsTr") == ["brain_001.nii.gz", "brain_002.nii.gz"]  # no ._ files
    assert _files(out / "imagesTs") == ["brain_003_0000.nii.gz", "brain_003_0001.nii.gz"]
    ds = DatasetJson.load(out / "dataset.json")
    assert ds.channel_names == {"0": "T1", "1": "T1half"} and ds.labels == {"background": 0, "brain": 1}
    ref, _ = brain(shared_data, CASES[1])
    c0 = sitk.ReadImage(str(out / "imagesTr" / "brain_002_0000.nii.gz"))
    c1 = sitk.ReadImage(str(out / "imagesTr" / "brain_002_0001.nii.gz"))
    for ch in (c0, c1):
        assert ch.GetDimension() == 3 and ch.GetSize() == ref.GetSize()
        assert np.allclose(ch.GetSpacing(), ref.GetSpacing()) and np.allclose(ch.GetOrigin(), ref.GetOrigin())
        assert np.allclose(ch.GetDirection(), ref.GetDirection())
    assert np.allclose(sitk.GetArrayFromImage(c1), 0.5 * sitk.GetArrayFromImage(c0))
    arrays = _plan_and_preprocess("Brain", roots["preprocessed"], ["brain_001", "brain_002"])
    assert np.load(arrays / "brain_001.npy", mmap_mode="r").shape[0] == 2  # both channels reach the network
    assert find_dataset("5") == "Dataset005_Brain"


def test_folders_with_link_and_output_flag(roots, folders_src, tmp_path):
    images, labels = folders_src
    target_root = tmp_path / "elsewhere"
    args = ["folders", "--images", str(images), "--labels", str(labels), "--name", "Brains",
            "--channel-names", "T1", "-d", "42", "-o", str(target_root), "--link"]
    assert main(args) == 0
    out = target_root / "Dataset042_Brains"
    assert os.path.samefile(out / "imagesTr" / "mni152_3mm_0000.nii.gz", images / "mni152_3mm.nii.gz")
    assert os.path.samefile(out / "labelsTr" / "colin27_2mm.nii.gz", labels / "colin27_2mm.nii.gz")
    ds = DatasetJson.load(out / "dataset.json")
    assert ds.channel_names == {"0": "T1"} and ds.labels == {"background": 0, "label_1": 1}
    assert main(args) == 1
    assert main(args + ["--overwrite"]) == 0
    assert (images / "mni152_3mm.nii.gz").is_file() and _nothing_written(roots["raw"])


def _expect_error(capsys, args, *fragments):
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err


def test_errors_name_the_file_and_write_nothing(roots, btcv_src, folders_src, tmp_path, capsys, monkeypatch):
    src = copy_tree(btcv_src, tmp_path / "RawData")
    lab = src / "Training" / "label"
    os.rename(lab / "label0002.nii.gz", tmp_path / "label0002.nii.gz")
    _expect_error(capsys, ["btcv", str(src)], "without a label", "img0002.nii.gz")
    os.rename(tmp_path / "label0002.nii.gz", lab / "label0002.nii.gz")

    (lab / "label0009.nii.gz").write_bytes((lab / "label0001.nii.gz").read_bytes())
    _expect_error(capsys, ["btcv", str(src)], "without an image", "label0009.nii.gz")
    (lab / "label0009.nii.gz").unlink()

    # img0002 is a 2 mm volume; give it the 3 mm case's label
    (lab / "label0002.nii.gz").write_bytes((lab / "label0001.nii.gz").read_bytes())
    _expect_error(capsys, ["btcv", str(src)], "label0002.nii.gz: shape (61, 73, 61) does not match img0002.nii.gz")
    assert _nothing_written(roots["raw"])

    # label values outside the declared labels: caught by the integrity check, bypassed by --no-verify
    images, labels = folders_src
    declared = tmp_path / "labels.json"
    declared.write_text(json.dumps({"background": 0, "brain": 1}))
    args = ["folders", "--images", str(src / "Training" / "img"), "--labels", str(tmp_path / "labs"),
            "--name", "Slabs", "--labels-json", str(declared)]
    (tmp_path / "labs").mkdir()
    for i in (1, 3):
        os.link(lab / f"label000{i}.nii.gz", tmp_path / "labs" / f"img000{i}.nii.gz")
    os.remove(src / "Training" / "img" / "img0002.nii.gz")
    _expect_error(capsys, args, "integrity check")
    assert _nothing_written(roots["raw"])
    assert main(args + ["--no-verify"]) == 0

    monkeypatch.delenv("MEDNEXT_raw")
    _expect_error(capsys, ["btcv", str(btcv_src)], "MEDNEXT_raw")
