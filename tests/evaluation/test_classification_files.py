"""Classification CSVs against a reference CSV or a folder of classes, and the mednext_evaluate branch."""
from __future__ import annotations

import json

import pytest

from mednext_fw.cli import evaluate
from mednext_fw.evaluation.classification_files import ClassificationEvaluationError, evaluate_classification

REGEX = r"^(?P<case>.+?)(?:_[A-Za-z]+)?_\d+$"


def _predictions(path, rows, classes=("a", "b")):
    lines = ["file,class," + ",".join(f"prob_{c}" for c in classes)]
    lines += [f"{f},{c}," + ",".join("1" if c == k else "0" for k in classes) for f, c in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reference_csv_and_per_case_spread(tmp_path):
    ref = tmp_path / "ref.csv"
    ref.write_text("file,label\np1_x_001.png,a\np1_x_002.png,b\np2_x_001.png,a\np2_x_002.png,1\n")
    pred = _predictions(tmp_path / "pred.csv", [("p1_x_001.png", "a"), ("p1_x_002.png", "b"),
                                                ("p2_x_001.png", "b"), ("p2_x_002.png", "b"), ("other_1.png", "a")])
    s = evaluate_classification(ref, pred, case_regex=REGEX)
    assert s["accuracy"] == 0.75 and s["num_samples"] == 4 and s["unmatched_predictions"] == 1
    assert s["per_case"] == {"p1": {"accuracy": 1.0, "num_images": 2}, "p2": {"accuracy": 0.5, "num_images": 2}}
    assert s["per_case_accuracy"]["min"] == 0.5 and s["per_case_accuracy"]["std"] == pytest.approx(0.25)
    assert s["confusion_matrix"] == [[1, 1], [0, 2]]


def test_folder_of_classes_matched_by_name_and_errors(tmp_path):
    for cls, files in {"a": ["c1_001.png", "c2_001.png"], "b": ["c1_002.png"]}.items():
        (tmp_path / "ref" / cls).mkdir(parents=True)
        for f in files:
            (tmp_path / "ref" / cls / f).write_bytes(b"")
    # predicted from a flat folder: names without the class folder
    pred = _predictions(tmp_path / "pred.csv", [("c1_001.png", "a"), ("c2_001.png", "a"), ("c1_002.png", "a")])
    s = evaluate_classification(tmp_path / "ref", pred, ["a", "b"], REGEX)
    assert s["accuracy"] == pytest.approx(2 / 3) and set(s["per_case"]) == {"c1", "c2"}
    short = _predictions(tmp_path / "short.csv", [("c1_001.png", "a")])
    with pytest.raises(ClassificationEvaluationError, match="no \\(unique\\) prediction for 2 of 3"):
        evaluate_classification(tmp_path / "ref", short)
    bad = _predictions(tmp_path / "bad.csv", [("c1_001.png", "z"), ("c2_001.png", "a"), ("c1_002.png", "a")])
    with pytest.raises(ClassificationEvaluationError, match="'z'"):
        evaluate_classification(tmp_path / "ref", bad, ["a", "b"])
    (tmp_path / "nohead.csv").write_text("x,y\n1,2\n")
    with pytest.raises(ClassificationEvaluationError, match="'file' and 'class'"):
        evaluate_classification(tmp_path / "ref", tmp_path / "nohead.csv")


def test_cli_branch(tmp_path, capsys):
    ref = tmp_path / "ref.csv"
    ref.write_text("file,class\nx_001.png,a\ny_001.png,b\n")
    pred = _predictions(tmp_path / "out" / "predictions.csv" if (tmp_path / "out").mkdir() is None else None,
                        [("x_001.png", "a"), ("y_001.png", "a")])
    assert evaluate.main(["-ref", str(ref), "-pred", str(pred)]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["accuracy"] == 0.5 and "per-case accuracy" in capsys.readouterr().out
    assert evaluate.main(["-ref", str(tmp_path / "missing.csv"), "-pred", str(pred)]) == 1
    assert "missing.csv" in capsys.readouterr().err
    assert evaluate.main(["-ref", str(ref), "-pred", str(pred), "-l", "1"]) == 1
