import json

import pytest

from mednext_fw.trainers.splits import SplitError, fold_cases, load_or_create_splits, make_splits


def test_make_splits_partitions_cases(tmp_path):
    cases = [f"c{i}" for i in range(11)]
    splits = load_or_create_splits(tmp_path / "splits_final.json", cases)
    assert len(splits) == 5
    assert sorted(sum((s["val"] for s in splits), [])) == sorted(cases)
    for s in splits:
        assert not set(s["train"]) & set(s["val"])
    assert json.loads((tmp_path / "splits_final.json").read_text()) == splits
    assert make_splits(cases) == splits  # deterministic


def test_fold_selection_and_errors():
    splits = make_splits(["a", "b", "c"])
    assert len(splits) == 3  # fewer cases than folds: one case per fold
    train, val = fold_cases(splits, 0, ["a", "b", "c"])
    assert len(train) == 2 and len(val) == 1
    assert fold_cases(splits, "all", ["b", "a"]) == (["a", "b"], ["a", "b"])
    with pytest.raises(SplitError, match="fold 4 does not exist"):
        fold_cases(splits, 4, ["a", "b", "c"])
    with pytest.raises(SplitError, match="without preprocessed data"):
        fold_cases(splits, 0, ["a"])
