"""Cross-validation folds for classification: by case when file names carry one, else stratified.

Slices of one volume are near-duplicates; if they straddled folds, validation accuracy would measure
memorisation. So images are grouped by the case id the planner parsed from their names (see
``case_id_regex`` in :mod:`mednext_fw.planners.classification`) whenever that grouping is meaningful:
at least one case per fold, some case holding more than one image, and (for the default regex, which
only guesses) no case larger than two folds' share. Otherwise folds are stratified by class per image.
"""
from __future__ import annotations

import random
from collections import defaultdict

from mednext_fw.planners.classification import ImageItem


def grouping_is_meaningful(items: list[ImageItem], num_folds: int, explicit_regex: bool) -> bool:
    sizes = defaultdict(int)
    for it in items:
        sizes[it.case_id] += 1
    if len(sizes) < num_folds or len(sizes) == len(items):
        return False
    return explicit_regex or max(sizes.values()) <= 2 * len(items) / num_folds


def _grouped(items: list[ImageItem], num_folds: int, rng: random.Random) -> list[list[str]]:
    cases = defaultdict(list)
    for it in items:
        cases[it.case_id].append(it.image_id)
    names = sorted(cases)
    rng.shuffle(names)
    names.sort(key=lambda c: -len(cases[c]))  # stable: equal sizes keep the shuffled order
    folds: list[list[str]] = [[] for _ in range(num_folds)]
    for case in names:  # largest first onto the currently smallest fold
        min(folds, key=len).extend(cases[case])
    return folds


def _stratified(items: list[ImageItem], num_folds: int, rng: random.Random) -> list[list[str]]:
    by_class = defaultdict(list)
    for it in items:
        by_class[it.label].append(it.image_id)
    folds: list[list[str]] = [[] for _ in range(num_folds)]
    offset = 0
    for label in sorted(by_class):
        ids = sorted(by_class[label])
        rng.shuffle(ids)
        for i, image_id in enumerate(ids):  # the offset keeps remainders from piling onto fold 0
            folds[(i + offset) % num_folds].append(image_id)
        offset += len(ids)
    return folds


def make_splits(items: list[ImageItem], num_folds: int = 5, seed: int = 12345,
                explicit_regex: bool = False) -> tuple[list[dict[str, list[str]]], str]:
    """``[{"train": [...], "val": [...]}] * num_folds`` and the rule that was used ("case" or "stratified")."""
    if num_folds < 2:
        raise ValueError(f"need at least 2 folds, got {num_folds}")
    if len(items) < num_folds:
        raise ValueError(f"{len(items)} images cannot be split into {num_folds} folds")
    rng = random.Random(seed)
    by_case = grouping_is_meaningful(items, num_folds, explicit_regex)
    folds = _grouped(items, num_folds, rng) if by_case else _stratified(items, num_folds, rng)
    splits = []
    for k in range(num_folds):
        val = sorted(folds[k])
        train = sorted(i for j, f in enumerate(folds) if j != k for i in f)
        splits.append({"train": train, "val": val})
    return splits, "case" if by_case else "stratified"
