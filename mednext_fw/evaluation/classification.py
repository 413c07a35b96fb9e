"""Metrics of a single-label classifier from integer labels.

Conventions (scikit-learn's defaults with ``zero_division=0``, cross-checked in the tests):
per-class precision is 0 for a class never predicted, recall is 0 for a class absent from
``y_true``, F1 is 0 when precision + recall = 0. Macro averages run over the classes that occur
in ``y_true`` or ``y_pred`` (a class seen in neither has no defined score). Balanced accuracy is
the mean recall over the classes present in ``y_true``. With no samples everything is NaN.
The confusion matrix has true classes as rows and predicted classes as columns.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} holds labels outside [0, {num_classes - 1}]: "
                             f"{sorted(set(arr[(arr < 0) | (arr >= num_classes)].tolist()))}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(num.shape, dtype=np.float64), where=den > 0)


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int,
                           class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro precision/recall/F1, per-class scores and the confusion matrix."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names given for {num_classes} classes")
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1)
    predicted = cm.sum(0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    seen = (support + predicted) > 0
    n = int(cm.sum())
    nan = math.nan
    return {
        "num_samples": n,
        "accuracy": float(tp.sum() / n) if n else nan,
        "balanced_accuracy": float(recall[support > 0].mean()) if n else nan,
        "macro_precision": float(precision[seen].mean()) if n else nan,
        "macro_recall": float(recall[seen].mean()) if n else nan,
        "macro_f1": float(f1[seen].mean()) if n else nan,
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(names)
        },
        "class_names": names,
        "confusion_matrix": cm.tolist(),
    }


def per_case_accuracy(y_true: Sequence[int], y_pred: Sequence[int], cases: Sequence[str]) -> dict[str, Any]:
    """Accuracy per case (patient) and its spread over cases.

    Slices of one patient are correlated, so the image-level accuracy overstates how sure we can be
    about the next patient: the spread over cases (worst case, standard deviation) says more.
    """
    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if not (len(t) == len(p) == len(cases)):
        raise ValueError(f"{len(t)} labels, {len(p)} predictions and {len(cases)} case ids differ in number")
    per_case = {}
    for case in sorted(set(cases)):
        mask = np.asarray([c == case for c in cases])
        per_case[case] = {"accuracy": float((t[mask] == p[mask]).mean()), "num_images": int(mask.sum())}
    accs = np.asarray([v["accuracy"] for v in per_case.values()], dtype=np.float64)
    nan = math.nan
    spread = {"num_cases": len(accs), "mean": float(accs.mean()) if len(accs) else nan,
              "std": float(accs.std()) if len(accs) else nan, "min": float(accs.min()) if len(accs) else nan,
              "max": float(accs.max()) if len(accs) else nan}
    return {"per_case": per_case, "per_case_accuracy": spread}
