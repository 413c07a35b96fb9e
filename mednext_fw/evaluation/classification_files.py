"""Score a classification CSV (``mednext_predict``'s ``file,class,prob_...``) against references.

References are either a CSV with a file column and a label column (``file,label``, ``file,class`` or
``file,true_class``; labels by name or index) or a folder of classes (``REF/<class>/<image>``, the
ImageFolder layout of a raw classification dataset's ``imagesTr``). Images are matched by their
path without the file ending; when the two sides were written relative to different folders, by
file name alone (which must then be unique). Every reference needs a prediction; predictions of
images without a reference are counted and left out.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, Sequence

from mednext_fw.errors import UserError
from mednext_fw.evaluation.classification import classification_metrics, per_case_accuracy

_ENDINGS = (".nii.gz", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".nii", ".nrrd", ".mha", ".mhd")


class ClassificationEvaluationError(UserError, ValueError):
    pass


def _key(name: str) -> str:
    name = name.replace("\\", "/").strip()
    low = name.lower()
    for ending in _ENDINGS:
        if low.endswith(ending):
            return name[: -len(ending)]
    return name


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = [r for r in reader if any((v or "").strip() for v in r.values())]
            return list(reader.fieldnames or []), rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ClassificationEvaluationError(f"{path}: cannot be read as CSV ({exc})") from exc


def read_predictions(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """``{image key: predicted class}`` and the class names of the ``prob_`` columns (may be empty)."""
    path = Path(path)
    header, rows = _read_rows(path)
    if not {"file", "class"} <= set(header):
        raise ClassificationEvaluationError(f"{path}: expected the columns 'file' and 'class' (as mednext_predict "
                                            f"writes them), found {header}")
    return {_key(r["file"]): r["class"].strip() for r in rows}, [h[5:] for h in header if h.startswith("prob_")]


def read_references(path: str | Path) -> dict[str, str]:
    """``{image key: true label}`` from a reference CSV or a folder of classes."""
    path = Path(path)
    if path.is_dir():
        out = {}
        for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for f in sorted(sub.rglob("*")):
                if f.is_file() and not f.name.startswith(".") and f.name.lower().endswith(_ENDINGS):
                    out[_key(f.relative_to(path).as_posix())] = sub.name
        if not out:
            raise ClassificationEvaluationError(f"{path}: no images in class sub-folders (expected REF/<class>/<image>)")
        return out
    if not path.is_file():
        raise ClassificationEvaluationError(f"{path}: reference CSV or folder not found")
    header, rows = _read_rows(path)
    label = next((c for c in ("true_class", "label", "class") if c in header), None)
    if "file" not in header or label is None:
        raise ClassificationEvaluationError(f"{path}: expected a 'file' column and one of 'label', 'class', "
                                            f"'true_class'; found {header}")
    return {_key(r["file"]): r[label].strip() for r in rows}


def match(references: dict[str, str], predictions: dict[str, str], ref_name: str, pred_name: str
          ) -> tuple[list[str], dict[str, str]]:
    """Reference keys in order and ``{reference key: prediction key}``; by path, else by unique file name."""
    if set(references) <= set(predictions):
        return sorted(references), {k: k for k in references}
    base = lambda k: k.rsplit("/", 1)[-1]  # noqa: E731
    by_name: dict[str, list[str]] = {}
    for k in predictions:
        by_name.setdefault(base(k), []).append(k)
    pairs, missing = {}, []
    for k in sorted(references):
        if k in predictions:
            pairs[k] = k
        elif len(by_name.get(base(k), [])) == 1:
            pairs[k] = by_name[base(k)][0]
        else:
            missing.append(k)
    if missing:
        raise ClassificationEvaluationError(f"{pred_name}: no (unique) prediction for {len(missing)} of "
                                            f"{len(references)} reference image(s) of {ref_name}, e.g. {missing[:3]}")
    return sorted(pairs), pairs


def _label_index(value: str, names: list[str], where: str) -> int:
    if value in names:
        return names.index(value)
    if value.isdigit() and int(value) < len(names):
        return int(value)
    raise ClassificationEvaluationError(f"{where}: label '{value}' is not one of the classes {names}")


def evaluate_classification(reference: str | Path, prediction: str | Path, class_names: Sequence[str] | None = None,
                            case_regex: str | None = None) -> dict[str, Any]:
    """Metrics of ``classification_metrics`` plus per-case accuracy (cases by ``case_regex``'s group
    ``case`` or group 1 on the file name; each image its own case without a regex)."""
    refs = read_references(reference)
    preds, prob_names = read_predictions(prediction)
    names = list(class_names or prob_names or sorted(set(refs.values()) | set(preds.values())))
    keys, pairs = match(refs, preds, str(reference), str(prediction))
    y_true = [_label_index(refs[k], names, f"{reference} ({k})") for k in keys]
    y_pred = [_label_index(preds[pairs[k]], names, f"{prediction} ({pairs[k]})") for k in keys]
    rx = re.compile(case_regex) if case_regex else None

    def case(k: str) -> str:
        stem = k.rsplit("/", 1)[-1]
        m = rx.match(stem) if rx else None
        return (m.groupdict().get("case") or (m.group(1) if rx.groups else stem)) if m else stem

    summary = classification_metrics(y_true, y_pred, len(names), names)
    summary.update(per_case_accuracy(y_true, y_pred, [case(k) for k in keys]))
    summary.update({"reference": str(reference), "prediction": str(prediction),
                    "unmatched_predictions": len(preds) - len(set(pairs.values()))})
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    spread = summary["per_case_accuracy"]
    lines = [f"{summary['num_samples']} image(s): accuracy {summary['accuracy']:.4f}, balanced accuracy "
             f"{summary['balanced_accuracy']:.4f}, macro F1 {summary['macro_f1']:.4f}",
             f"{spread['num_cases']} case(s): per-case accuracy mean {spread['mean']:.4f}, std {spread['std']:.4f}, "
             f"worst {spread['min']:.4f}"]
    lines += [f"  {c}: {v['accuracy']:.4f} ({v['num_images']} images)" for c, v in summary["per_case"].items()]
    return "\n".join(lines)
