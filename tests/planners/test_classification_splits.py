"""Fold rules: whole cases per fold when ids are meaningful, otherwise class-stratified images."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mednext_fw.planners.classification import ImageItem
from mednext_fw.planners.classification_splits import grouping_is_meaningful, make_splits


def _items(case_sizes: dict[str, int], num_classes=3) -> list[ImageItem]:
    out = []
    for case, n in case_sizes.items():
        out += [ImageItem(f"{case}_{i}", Path(f"{case}_{i}.png"), i % num_classes, case) for i in range(n)]
    return out


def test_grouped_folds_keep_cases_whole_and_balanced():
    items = _items({f"c{i}": 10 + i for i in range(10)})
    splits, rule = make_splits(items, 5)
    assert rule == "case"
    case_of = {it.image_id: it.case_id for it in items}
    seen = Counter()
    for s in splits:
        assert not {case_of[i] for i in s["val"]} & {case_of[i] for i in s["train"]}
        seen.update(s["val"])
    assert set(seen.values()) == {1} and len(seen) == len(items)
    sizes = [len(s["val"]) for s in splits]
    assert max(sizes) - min(sizes) <= 14  # greedy largest-first: within one case of each other
    assert make_splits(items, 5)[0] == splits  # deterministic


def test_stratified_fallbacks():
    one_each = _items({f"img{i}": 1 for i in range(30)})  # every image its own case
    splits, rule = make_splits(one_each, 5)
    assert rule == "stratified"
    for s in splits:
        assert len(s["val"]) == 6
    too_few = _items({"a": 20, "b": 20})
    assert make_splits(too_few, 5)[1] == "stratified"
    lopsided = _items({"big": 100, "x": 2, "y": 2, "z": 2, "w": 2})
    assert not grouping_is_meaningful(lopsided, 5, explicit_regex=False)
    assert grouping_is_meaningful(lopsided, 5, explicit_regex=True)
    splits, _ = make_splits(_items({f"i{k}": 1 for k in range(15)}, num_classes=3), 5)
    for s in splits:  # each class spread evenly
        labels = Counter(int(i.split("_")[1]) % 3 for i in s["val"])
        assert sum(labels.values()) == 3
    with pytest.raises(ValueError, match="folds"):
        make_splits(_items({"a": 3}), 5)
