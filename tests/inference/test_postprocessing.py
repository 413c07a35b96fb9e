import numpy as np
import SimpleITK as sitk

from mednext_fw.inference.postprocessing import (PostprocessingRules, apply_postprocessing, determine_postprocessing,
                                                 keep_largest_component)
from mednext_fw.io.dataset_json import DatasetJson

DS = DatasetJson(channel_names={"0": "CT"}, labels={"background": 0, "a": 1, "b": 2}, file_ending=".nii.gz",
                 num_training=3)


def test_keep_largest_component():
    seg = np.zeros((10, 10, 10), np.uint8)
    seg[1:5, 1:5, 1:5] = 1
    seg[7:9, 7:9, 7:9] = 2
    seg[0, 9, 9] = 1
    out = keep_largest_component(seg, [1, 2])
    assert out[0, 9, 9] == 0 and out[7, 7, 7] == 0 and out[2, 2, 2] == 1
    out = keep_largest_component(seg, [2])
    np.testing.assert_array_equal(out, seg)  # one component of label 2: unchanged
    assert keep_largest_component(seg, [1])[0, 9, 9] == 0


def _write(folder, name, arr):
    folder.mkdir(exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(arr.astype(np.uint8)), str(folder / f"{name}.nii.gz"))


def test_determine_accepts_only_helpful_rules(tmp_path):
    ref_dir, pred_dir = tmp_path / "ref", tmp_path / "pred"
    for i in range(3):
        ref = np.zeros((12, 12, 12), np.uint8)
        ref[2:6, 2:6, 2:6] = 1
        ref[6:10, 2:6, 2:6] = 2
        pred = ref.copy()
        pred[10:12, 10:12, 10:12] = 1  # a spurious blob of class 1 only
        pred[6, 2, 2] = 1  # touching: stays in the main component
        _write(ref_dir, f"c{i}", ref)
        _write(pred_dir, f"c{i}", pred)
    out = tmp_path / "model" / "postprocessing.json"
    rules = determine_postprocessing(ref_dir, [pred_dir], DS, out)
    assert rules.largest_foreground_component is True
    assert rules.largest_component_per_class == []  # nothing left to gain per class
    assert rules.dice_after["1"] > rules.dice_before["1"] and rules.dice_after["2"] == rules.dice_before["2"]
    loaded = PostprocessingRules.load(out)
    assert loaded == rules
    pred = sitk.GetArrayFromImage(sitk.ReadImage(str(pred_dir / "c0.nii.gz")))
    assert apply_postprocessing(pred, loaded, DS)[11, 11, 11] == 0


def test_rule_that_hurts_is_rejected(tmp_path):
    ref_dir, pred_dir = tmp_path / "ref", tmp_path / "pred"
    ref = np.zeros((12, 12, 12), np.uint8)
    ref[1:4, 1:4, 1:4] = 1
    ref[8:11, 8:11, 8:11] = 1  # two true components of label 1
    _write(ref_dir, "c0", ref)
    _write(pred_dir, "c0", ref)
    rules = determine_postprocessing(ref_dir, pred_dir, DS)
    assert rules.is_identity()
