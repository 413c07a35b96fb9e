"""Cross-validation splits (``splits_final.json``): 5 folds over the sorted case ids, seeded.

The permutation is numpy's RandomState(12345) shuffle of the sorted ids, cut into folds like
scikit-learn's KFold (the first ``n % k`` folds one larger), i.e. the same folds nnU-Net makes.
A file the user put there is kept as is (after checking it names known cases).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mednext_fw.io.atomic import write_json_atomic

SEED = 12345
NUM_FOLDS = 5


class SplitsError(ValueError):
    pass


def make_splits(case_ids: list[str], num_folds: int = NUM_FOLDS, seed: int = SEED) -> list[dict[str, list[str]]]:
    ids = sorted(case_ids)
    if len(ids) < 2:
        raise SplitsError(f"cross-validation needs at least 2 training cases, found {len(ids)}")
    k = min(num_folds, len(ids))
    perm = np.arange(len(ids))
    np.random.RandomState(seed).shuffle(perm)
    sizes = [len(ids) // k + (1 if f < len(ids) % k else 0) for f in range(k)]
    splits, start = [], 0
    for size in sizes:
        val = set(perm[start:start + size].tolist())
        start += size
        splits.append({"train": [ids[i] for i in range(len(ids)) if i not in val],
                       "val": [ids[i] for i in sorted(val)]})
    return splits


def ensure_splits(path: str | Path, case_ids: list[str]) -> tuple[list[dict[str, list[str]]], str]:
    """Load the user's/earlier ``splits_final.json`` or write a new one; returns (splits, message)."""
    path = Path(path)
    if path.is_file():
        try:
            splits = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SplitsError(f"{path}: not valid JSON ({exc})") from exc
        known = set(case_ids)
        for i, s in enumerate(splits):
            if not isinstance(s, dict) or not {"train", "val"} <= set(s):
                raise SplitsError(f"{path}: fold {i} must be {{\"train\": [...], \"val\": [...]}}")
            unknown = sorted((set(s["train"]) | set(s["val"])) - known)
            if unknown:
                raise SplitsError(f"{path}: fold {i} names unknown case(s) {unknown[:5]}")
        return splits, f"kept the existing {path.name} ({len(splits)} folds)"
    splits = make_splits(case_ids)
    write_json_atomic(splits, path)
    msg = f"wrote {path.name}: {len(splits)}-fold cross-validation"
    if len(splits) < NUM_FOLDS:
        msg += f" (only {len(case_ids)} cases, so {len(splits)} folds instead of {NUM_FOLDS}: one case per fold)"
    return splits, msg
