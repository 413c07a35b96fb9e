import math

import numpy as np
import pytest

from mednext_fw.evaluation import classification_metrics


def test_hand_worked_three_classes():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    m = classification_metrics(y_true, y_pred, 3, class_names=["ax", "cor", "sag"])
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recalls 2/3, 1/2, 1 ; precisions 1, 1/2, 1/2
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["macro_precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 * 1 / 1.5]
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert m["per_class"]["cor"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}


def test_unseen_and_unpredicted_classes():
    m = classification_metrics([0, 0, 1], [0, 0, 0], 3)
    assert m["per_class"]["1"]["precision"] == 0.0 and m["per_class"]["1"]["recall"] == 0.0
    assert m["balanced_accuracy"] == pytest.approx(0.5)  # class 2 never occurs: not averaged
    assert m["macro_recall"] == pytest.approx(0.5)


def test_empty_input_is_nan():
    m = classification_metrics([], [], 2)
    assert m["num_samples"] == 0 and math.isnan(m["accuracy"]) and math.isnan(m["macro_f1"])


def test_refusals():
    with pytest.raises(ValueError, match="outside"):
        classification_metrics([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="labels"):
        classification_metrics([0, 1], [0], 2)
    with pytest.raises(ValueError, match="class names"):
        classification_metrics([0], [0], 2, class_names=["a"])


def test_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 3, 200))
    m = classification_metrics(y_true, y_pred, 5)
    assert m["accuracy"] == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert m["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(y_true, y_pred))
    for ours, avg in (("macro_precision", metrics.precision_score), ("macro_recall", metrics.recall_score),
                      ("macro_f1", metrics.f1_score)):
        assert m[ours] == pytest.approx(avg(y_true, y_pred, average="macro", zero_division=0))
    np.testing.assert_array_equal(m["confusion_matrix"], metrics.confusion_matrix(y_true, y_pred, labels=range(5)))
