import math

import numpy as np
import pytest

from mednext_fw.evaluation import compute_case_metrics, region_key


def _maps():
    ref = np.zeros((6, 6, 6), np.uint8)
    ref[1:4, 1:4, 1:4] = 1
    ref[4:6, 4:6, 4:6] = 2
    pred = ref.copy()
    pred[1, 1:4, 1:4] = 2  # one slab of label 1 predicted as label 2
    return ref, pred


def test_labels_and_regions():
    ref, pred = _maps()
    out = compute_case_metrics(ref, pred, (1, 1, 1), [(1,), (2,), (1, 2)])
    assert list(out) == ["1", "2", "(1, 2)"]
    assert out["1"]["Dice"] == pytest.approx(2 * 18 / (27 + 18))
    assert out["2"]["FP"] == 9 and out["2"]["TP"] == 8
    # The union is predicted perfectly even though the labels are confused.
    assert out["(1, 2)"]["Dice"] == 1.0 and out["(1, 2)"]["NSD"] == 1.0 and out["(1, 2)"]["HD95"] == 0.0


def test_region_key():
    assert region_key((3,)) == "3" and region_key(3) == "3" and region_key([1, 2]) == "(1, 2)"


def test_ignore_label_excluded_from_both_masks():
    ref, pred = _maps()
    ref[1, 1:4, 1:4] = 9  # the confused slab becomes "don't care" in the reference
    out = compute_case_metrics(ref, pred, (1, 1, 1), [(1,), (2,)], ignore_label=9)
    assert out["1"]["Dice"] == 1.0 and out["2"]["Dice"] == 1.0
    assert out["1"]["TN"] + out["1"]["TP"] == ref.size - 9


def test_absent_label_conventions():
    ref, pred = _maps()
    out = compute_case_metrics(ref, pred, (1, 1, 1), [(3,)])["3"]
    assert math.isnan(out["Dice"]) and math.isnan(out["NSD"]) and math.isnan(out["HD95"])
    pred[0, 0, 0] = 3
    out = compute_case_metrics(ref, pred, (1, 1, 1), [(3,)])["3"]
    assert out["Dice"] == 0.0 and out["NSD"] == 0.0 and out["HD95"] == math.inf


def test_channel_axis_and_2d_images():
    ref = np.zeros((1, 1, 8, 8), np.uint8)  # a 2D image as read_seg returns it: (C, 1, H, W), spacing[0] = 999
    ref[0, 0, 2:6, 2:6] = 1
    pred = np.roll(ref, 1, axis=3)
    out = compute_case_metrics(ref, pred, (999.0, 0.5, 0.5), [(1,)])["1"]
    # In 2D the surfaces are 12-pixel rings; in 3D with a 999 mm slab every pixel would be surface.
    assert out["volume_ref"] == pytest.approx(16 * 0.25)
    assert out["HD95"] == pytest.approx(0.5)
    assert out["NSD"] == 1.0


def test_surface_off_and_refusals():
    ref, pred = _maps()
    out = compute_case_metrics(ref, pred, (1, 1, 1), [(1,)], surface=False)["1"]
    assert "NSD" not in out and "Dice" in out
    with pytest.raises(ValueError, match="shape"):
        compute_case_metrics(ref, pred[:-1], (1, 1, 1), [(1,)])
    with pytest.raises(ValueError, match="spacing"):
        compute_case_metrics(ref, pred, (1, 1), [(1,)])
    with pytest.raises(ValueError, match="spacing"):
        compute_case_metrics(ref, pred, (1, 0, 1), [(1,)])
