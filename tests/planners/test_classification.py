"""Planning of classification datasets: listing (folders and CSV), case ids, the input-size rule."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.planners.classification import (DEFAULT_CASE_REGEX, ClassificationDataError, case_id_of,
                                                image_fingerprint, list_images, plan_classification)
from mednext_fw.planners.plans import Plans


def _dataset(root: Path, labels=None, **extra) -> DatasetJson:
    d = {"task": "classification", "channel_names": {"0": "x"}, "labels": labels or {"a": 0, "b": 1},
         "file_ending": ".png", **extra}
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps(d))
    return DatasetJson.load(root / "dataset.json")


def _img(path: Path, shape=(20, 30), mode="L", dtype=np.uint8):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(0).random(shape) * (255 if dtype == np.uint8 else 4000)).astype(dtype)
    Image.fromarray(arr, mode if mode != "I;16" else None).save(path)


def test_real_dataset_listing_and_plan(shared_data, tmp_path):
    raw = shared_data / "Dataset101_MRIPlanes"
    ds = DatasetJson.load(raw / "dataset.json")
    items = list_images(raw, ds)
    assert len(items) == 268
    assert {it.case_id for it in items} == {"colin27_1mm", "colin27_2mm", "mni152_1mm", "mni152_2mm", "mni152_3mm"}
    for it in items:  # the label is the folder's class
        assert ds.class_names[it.label] == it.file.parent.name
    fp = image_fingerprint(items)
    assert fp["num_images"] == 268 and fp["num_cases"] == 5 and fp["modes"] == {"L": 268}
    plans = plan_classification("Dataset101_MRIPlanes", ds, fp)
    cfg = plans.configuration("2d_cls")
    assert cfg.patch_size == [96, 96]  # median side 91 -> 96
    assert cfg.normalization == ["zscore_fg"] and cfg.task == "classification"  # "T1" is MR-like
    assert cfg.mirror_axes == [] and cfg.extra["augmentation"] == {"preset": "default"}
    assert cfg.extra["class_names"] == ["sagittal", "coronal", "axial"]
    plans.save(tmp_path / "plans.json")
    assert Plans.load(tmp_path / "plans.json").to_dict() == plans.to_dict()


def test_case_id_rule():
    rx = re.compile(DEFAULT_CASE_REGEX)
    assert case_id_of("colin27_1mm_axial_030", rx) == "colin27_1mm"
    assert case_id_of("patient_01_slice_003", rx) == "patient_01"
    assert case_id_of("scan7", rx) == "scan7"  # no index: the image is its own case
    assert case_id_of("p3-img9", re.compile(r"^(p\d+)-")) == "p3"


def test_custom_regex_from_dataset_json(tmp_path):
    ds = _dataset(tmp_path / "D", case_id_regex=r"^(?P<case>pat\d+)")
    _img(tmp_path / "D/imagesTr/a/pat1x.png")
    _img(tmp_path / "D/imagesTr/b/pat2y.png")
    assert sorted(it.case_id for it in list_images(tmp_path / "D", ds)) == ["pat1", "pat2"]
    bad = _dataset(tmp_path / "E", case_id_regex="(")
    _img(tmp_path / "E/imagesTr/a/x.png")
    with pytest.raises(ClassificationDataError, match="case_id_regex"):
        list_images(tmp_path / "E", bad)


def test_csv_listing_names_and_indices(tmp_path):
    root = tmp_path / "D"
    ds = _dataset(root)
    for n in ("x1", "x2", "x3"):
        _img(root / "imagesTr" / f"{n}.png")
    (root / "labelsTr.csv").write_text("file,label\nx1.png,a\nx2.png,1\nx3.png,b\n")
    items = list_images(root, ds)
    assert [(it.image_id, it.label) for it in items] == [("x1", 0), ("x2", 1), ("x3", 1)]
    (root / "labelsTr.csv").write_text("x1.png,c\n")
    with pytest.raises(ClassificationDataError, match="row 1.*'c'"):
        list_images(root, ds)
    (root / "labelsTr.csv").write_text("missing.png,a\n")
    with pytest.raises(ClassificationDataError, match="missing.png"):
        list_images(root, ds)


def test_bad_layouts_are_named(tmp_path):
    ds = _dataset(tmp_path / "D")
    _img(tmp_path / "D/imagesTr/zebra/x.png")
    with pytest.raises(ClassificationDataError, match="zebra"):
        list_images(tmp_path / "D", ds)
    ds2 = _dataset(tmp_path / "E")
    (tmp_path / "E/imagesTr/a").mkdir(parents=True)
    with pytest.raises(ClassificationDataError, match="no images"):
        list_images(tmp_path / "E", ds2)
    ds3 = _dataset(tmp_path / "F", labels={"a": 0, "b": 2})
    _img(tmp_path / "F/imagesTr/a/x.png")
    with pytest.raises(ClassificationDataError, match="0..K-1"):
        plan_classification("F", ds3, image_fingerprint(list_images(tmp_path / "F", ds3)))


def test_size_channel_and_normalisation_rules(tmp_path):
    ds = _dataset(tmp_path / "D")
    _img(tmp_path / "D/imagesTr/a/big.png", shape=(600, 500, 3), mode="RGB")
    _img(tmp_path / "D/imagesTr/b/big2.png", shape=(600, 500))
    fp = image_fingerprint(list_images(tmp_path / "D", ds))
    cfg = plan_classification("D", ds, fp).configuration("2d_cls")
    assert cfg.patch_size == [224, 224]  # capped
    assert cfg.normalization == ["rgb_0_1"] * 3  # any colour image -> 3 channels
    assert plan_classification("D", ds, fp, input_size=64).configuration("2d_cls").patch_size == [64, 64]
    with pytest.raises(ClassificationDataError, match="multiple of 16"):
        plan_classification("D", ds, fp, input_size=70)
    ds2 = _dataset(tmp_path / "E")
    _img(tmp_path / "E/imagesTr/a/small.png", shape=(10, 12), mode="I;16", dtype=np.uint16)
    cfg2 = plan_classification("E", ds2, image_fingerprint(list_images(tmp_path / "E", ds2))).configuration("2d_cls")
    assert cfg2.patch_size == [32, 32] and cfg2.normalization == ["zscore"]
    assert cfg2.batch_size >= 2


def test_mr_channels_spacing_and_flips_from_dataset_json(tmp_path):
    ds = _dataset(tmp_path / "D", spacing=[2.0, 0.5], mirror_axes=[1])
    ds.channel_names = {"0": "T2w"}
    _img(tmp_path / "D/imagesTr/a/x_001.png", shape=(40, 160))
    _img(tmp_path / "D/imagesTr/b/y_001.png", shape=(40, 160))
    fp = image_fingerprint(list_images(tmp_path / "D", ds), ds)
    assert fp["spacings"] == [[2.0, 0.5], [2.0, 0.5]]
    plans = plan_classification("D", ds, fp)
    cfg = plans.configuration("2d_cls")
    assert cfg.normalization == ["zscore_fg"] and cfg.mirror_axes == [1]
    # 40 rows of 2 mm and 160 columns of 0.5 mm: 80 x 80 mm, resampled to 0.5 mm -> 160 x 160 pixels
    assert cfg.spacing == [0.5, 0.5] and cfg.extra["resample"] and cfg.median_image_size == [160, 160]
    assert cfg.patch_size == [160, 160] and any("spacing 0.5" in n for n in plans.planner_notes)
    for bad in ({"spacing": [1.0]}, {"mirror_axes": [2]}):
        wrong = _dataset(tmp_path / "E", **bad)
        _img(tmp_path / "E/imagesTr/a/x_001.png")
        with pytest.raises(ClassificationDataError, match=next(iter(bad))):
            plan_classification("E", wrong, image_fingerprint(list_images(tmp_path / "E", wrong), wrong))


@pytest.mark.parametrize("name,eight_bit,scheme", [("T1", True, "zscore_fg"), ("flair", False, "zscore_fg"),
                                                   ("MRI", True, "zscore_fg"), ("rgb", True, "rgb_0_1"),
                                                   ("CT", False, "zscore"), ("patient", True, "rgb_0_1")])
def test_normalisation_by_channel_name(name, eight_bit, scheme):
    from mednext_fw.planners.classification import normalization_for

    assert normalization_for(name, eight_bit)[0] == scheme
