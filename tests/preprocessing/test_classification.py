"""Classification preprocessing: resize + normalise, the memory-mapped cache, the whole stage on real data."""
from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from mednext_fw.planners.classification import ImageItem
from mednext_fw.planners.plans import Configuration
from mednext_fw.preprocessing.classification_run import plan_and_preprocess_classification
from mednext_fw.preprocessing.classification import (load_cache, prepare_image, preprocess_images,
                                                     read_classification_image)


def _config(size=16, norm=("rgb_0_1",), resize="pad") -> Configuration:
    return Configuration(name="2d_cls", dim=2, spacing=[1, 1], patch_size=[size, size], batch_size=2,
                         median_image_size=[size, size], normalization=list(norm),
                         use_mask_for_norm=[False] * len(norm), task="classification",
                         extra={"resize": resize, "class_names": ["a", "b"]})


def test_prepare_pads_to_square_then_resizes():
    img = np.full((1, 8, 16), 200, np.uint8)  # wide bright image
    out = prepare_image(img, _config(size=16))
    assert out.shape == (1, 16, 16) and out.dtype == np.float32
    # padded with the image minimum (here the only value): constant 200/255 everywhere
    np.testing.assert_allclose(out, 200 / 255, atol=1e-6)
    img[:, :, :8] = 0  # left half dark: after centring on a 16x16 canvas the rows above/below are dark too
    out = prepare_image(img, _config(size=16))
    assert out[0, 0].max() == 0 and out[0, 8, 12] == pytest.approx(200 / 255, abs=1e-5)
    stretched = prepare_image(img, _config(size=16, resize="stretch"))
    assert stretched[0, 0, 12] == pytest.approx(200 / 255, abs=1e-5)


def test_zscore_and_unknown_scheme():
    img = np.random.default_rng(0).integers(0, 4000, (1, 20, 20)).astype(np.uint16)
    out = prepare_image(img, _config(size=20, norm=("zscore",)))  # statistics over the image itself
    assert abs(out.mean()) < 1e-4 and out.std() == pytest.approx(1, abs=1e-3)
    with pytest.raises(ValueError, match="ct"):
        prepare_image(img, _config(norm=("ct",)))


def test_grey_is_replicated_for_colour_plans(tmp_path):
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(tmp_path / "g.png")
    arr, spacing = read_classification_image(tmp_path / "g.png", 3)
    assert arr.shape == (3, 3, 4) and (arr[0] == arr[2]).all() and spacing is None
    assert read_classification_image(tmp_path / "g.png", 3, [0.5, 0.7])[1] == [0.5, 0.7]
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(tmp_path / "c.png")
    assert read_classification_image(tmp_path / "c.png", 1)[0].shape == (1, 3, 4)


def test_cache_is_memmap_and_skipped_when_current(tmp_path):
    items = []
    for i in range(4):
        p = tmp_path / "raw" / f"im_{i}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((10, 12), 60 * i, np.uint8)).save(p)
        items.append(ImageItem(f"im_{i}", p, i % 2, f"c{i}"))
    out = tmp_path / "pre"
    arr_file = preprocess_images(items, _config(), out, verbose=False)
    data, index = load_cache(out)
    assert isinstance(data, np.memmap) and data.shape == (4, 1, 16, 16)
    assert index["labels"] == [0, 1, 0, 1] and index["case_ids"] == ["c0", "c1", "c2", "c3"]
    np.testing.assert_allclose(data[3], 180 / 255, atol=1e-6)
    mtime = os.stat(arr_file).st_mtime_ns
    preprocess_images(items, _config(), out, verbose=False)
    assert os.stat(arr_file).st_mtime_ns == mtime  # unchanged settings: skipped
    preprocess_images(items, _config(size=32), out, verbose=False)
    assert load_cache(out)[0].shape == (4, 1, 32, 32)  # changed settings: rebuilt
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


def test_stage_on_real_data_splits_by_case(roots, shared_data):
    (roots["raw"] / "Dataset101_MRIPlanes").symlink_to(shared_data / "Dataset101_MRIPlanes")
    out = plan_and_preprocess_classification("Dataset101_MRIPlanes", input_size=32, verbose=False)
    for name in ("dataset.json", "fingerprint.json", "plans.json", "splits_final.json"):
        assert (out / name).is_file()
    data, index = load_cache(out / "mednextPlans_2d_cls")
    assert data.shape == (268, 1, 32, 32) and np.isfinite(data).all()
    plans = json.loads((out / "plans.json").read_text())["configurations"]["2d_cls"]
    assert plans["normalization"] == ["zscore_fg"]  # channel "T1": MR-like
    assert plans["extra"]["resample"] is False  # PNGs carry no spacing and dataset.json gives none
    splits = json.loads((out / "splits_final.json").read_text())
    case_of = dict(zip(index["ids"], index["case_ids"]))
    folds_of_case = defaultdict(set)
    for k, s in enumerate(splits):
        assert sorted(s["train"] + s["val"]) == sorted(index["ids"]) and not set(s["train"]) & set(s["val"])
        for i in s["val"]:
            folds_of_case[case_of[i]].add(k)
    assert all(len(f) == 1 for f in folds_of_case.values()) and len(folds_of_case) == 5
    # a re-run keeps the user's plans and the existing splits
    plans = json.loads((out / "plans.json").read_text())
    plans["configurations"]["2d_cls"]["batch_size"] = 7
    (out / "plans.json").write_text(json.dumps(plans))
    (out / "splits_final.json").write_text(json.dumps(splits[:2] * 1 + splits[2:]))
    before = (out / "splits_final.json").read_text()
    plan_and_preprocess_classification("Dataset101_MRIPlanes", verbose=False)
    assert json.loads((out / "plans.json").read_text())["configurations"]["2d_cls"]["batch_size"] == 7
    assert (out / "splits_final.json").read_text() == before


def _disk_slice(tmp_path, name="disk.nii.gz", three_d=False):
    """A 50 mm disk on a slice of 3 mm rows and 1 mm columns (20 x 60 pixels = 60 x 60 mm)."""
    import SimpleITK as sitk

    rows, cols = np.meshgrid((np.arange(20) + 0.5) * 3.0, (np.arange(60) + 0.5) * 1.0, indexing="ij")
    disk = (((rows - 30) ** 2 + (cols - 30) ** 2) < 25 ** 2).astype(np.float32) * 100
    img = sitk.GetImageFromArray(disk[None] if three_d else disk)
    img.SetSpacing((1.0, 3.0, 2.0) if three_d else (1.0, 3.0))  # SimpleITK order: columns, rows
    sitk.WriteImage(img, str(tmp_path / name))
    return tmp_path / name


def _extent(mask: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(mask)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


@pytest.mark.parametrize("three_d", [False, True])
def test_anisotropic_slice_is_resampled_to_square_pixels(tmp_path, three_d):
    path = _disk_slice(tmp_path, three_d=three_d)
    arr, spacing = read_classification_image(path, 1)
    assert arr.shape == (1, 20, 60) and spacing == [3.0, 1.0]
    aware = _config(size=48, norm=("none",))
    aware.spacing, aware.extra["resample"] = [1.0, 1.0], True
    out = prepare_image(arr, aware, spacing)[0]
    h, w = _extent(out > 50)
    assert abs(h - w) <= 2 and 37 <= min(h, w) and max(h, w) <= 42  # round: 50 of 60 mm -> ~40 of 48 px (3 mm rows)
    naive = prepare_image(arr, _config(size=48, norm=("none",)), spacing)[0]  # spacing ignored
    h, w = _extent(naive > 50)
    assert w / h > 2.5  # pixels taken as square: the disk is squashed to a 3:1 ellipse


def test_foreground_zscore_and_percentile():
    img = np.zeros((1, 20, 20), np.float32)
    img[0, 5:15, 5:15] = np.random.default_rng(0).normal(500, 50, (10, 10))
    out = prepare_image(img, _config(size=20, norm=("zscore_fg",)))[0]
    fg = out[5:15, 5:15]
    assert abs(fg.mean()) < 1e-3 and fg.std() == pytest.approx(1, abs=1e-3) and out[0, 0] < fg.min()
    scaled = prepare_image(img * 3 + 7, _config(size=20, norm=("zscore_fg",)))[0]
    np.testing.assert_allclose(scaled, out, atol=1e-4)  # independent of the scanner's scale and offset
    pct = prepare_image(img, _config(size=20, norm=("percentile",)))[0]
    assert pct.min() == 0 and pct.max() == pytest.approx(1)


def test_crop_mode_keeps_aspect():
    img = np.zeros((1, 10, 30), np.float32)
    img[0, :, 10:20] = 1  # the centre third is bright
    out = prepare_image(img, _config(size=10, norm=("none",), resize="crop"))[0]
    assert out.min() == 1  # the centre 10 x 10 square only


def test_foreground_ignores_low_background_noise():
    """Two heads that differ only in low noise in the air (MNI152 template: mostly 1-14 of 255; Colin27: 0)."""
    rng = np.random.default_rng(1)
    clean = np.zeros((1, 30, 30), np.float32)
    clean[0, 8:22, 8:22] = rng.normal(150, 30, (14, 14)).clip(60, 255)
    noisy = clean.copy()
    air = noisy[0] == 0
    noisy[0][air] = rng.uniform(1, 15, air.sum())  # below 10% of the range
    a = prepare_image(clean, _config(size=30, norm=("zscore_fg",)))[0][8:22, 8:22]
    b = prepare_image(noisy, _config(size=30, norm=("zscore_fg",)))[0][8:22, 8:22]
    np.testing.assert_allclose(a, b, atol=1e-5)
