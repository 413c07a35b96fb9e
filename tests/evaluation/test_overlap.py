import math

import numpy as np
import pytest

from mednext_fw.evaluation.overlap import overlap_metrics


def test_hand_worked_counts():
    ref = np.array([1, 1, 1, 0, 0, 0], bool)
    pred = np.array([0, 1, 1, 1, 0, 0], bool)
    m = overlap_metrics(ref, pred, voxel_volume=2.0)
    assert (m["TP"], m["FP"], m["FN"], m["TN"]) == (2, 1, 1, 2)
    assert m["Dice"] == pytest.approx(4 / 6)
    assert m["IoU"] == pytest.approx(2 / 4)
    assert (m["n_ref"], m["n_pred"]) == (3, 3)
    assert (m["volume_ref"], m["volume_pred"]) == (6.0, 6.0)


def test_both_empty_is_nan_and_one_empty_is_zero():
    empty = np.zeros((3, 3), bool)
    full = np.ones((3, 3), bool)
    both = overlap_metrics(empty, empty, 1.0)
    assert math.isnan(both["Dice"]) and math.isnan(both["IoU"])
    assert both["TN"] == 9
    for ref, pred in ((empty, full), (full, empty)):
        m = overlap_metrics(ref, pred, 1.0)
        assert m["Dice"] == 0.0 and m["IoU"] == 0.0


def test_valid_mask_removes_voxels_everywhere():
    ref = np.array([1, 1, 0, 0], bool)
    pred = np.array([1, 0, 1, 0], bool)
    valid = np.array([1, 0, 0, 1], bool)  # the FN and the FP voxel are ignored
    m = overlap_metrics(ref, pred, 1.0, valid)
    assert (m["TP"], m["FP"], m["FN"], m["TN"]) == (1, 0, 0, 1)
    assert m["Dice"] == 1.0


def test_shape_mismatch_refused():
    with pytest.raises(ValueError, match="shape"):
        overlap_metrics(np.zeros(3, bool), np.zeros(4, bool), 1.0)
