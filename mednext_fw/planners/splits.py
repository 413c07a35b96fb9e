"""Cross-validation splits (``splits_final.json``): the one owner of the fold rule and the file.

The permutation is numpy's RandomState(12345) shuffle of the sorted ids, cut into folds like
scikit-learn's KFold (the first ``n % k`` folds one larger), i.e. the same folds nnU-Net makes.
Planning writes the file (``ensure_splits``); a file the user put there is kept as is, after checking
it names known cases. Training only reads it (``read_splits`` + ``fold_cases``), never writes it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mednext_fw.errors import UserError
from mednext_fw.io.atomic import write_json_atomic

SEED = 12345
NUM_FOLDS = 5

Splits = list[dict[str, list[str]]]


class SplitsError(UserError, ValueError):
    pass


def make_splits(case_ids: list[str], num_folds: int = NUM_FOLDS, seed: int = SEED) -> Splits:
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


def read_splits(path: str | Path, known: list[str] | None = None) -> Splits:
    """Load and check ``splits_final.json``; with ``known``, every named case must be one of them."""
    path = Path(path)
    try:
        splits = json.loads(path.read_text())
    except FileNotFoundError:
        raise SplitsError(f"{path}: not found; run mednext_plan_and_preprocess, which writes it") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SplitsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(splits, list) or not splits:
        raise SplitsError(f"{path}: expected a list of {{\"train\": [...], \"val\": [...]}} folds")
    for i, s in enumerate(splits):
        if not isinstance(s, dict) or not {"train", "val"} <= set(s) or \
                not all(isinstance(s[k], list) for k in ("train", "val")):
            raise SplitsError(f"{path}: fold {i} must be {{\"train\": [...], \"val\": [...]}}")
        if known is not None:
            unknown = sorted((set(s["train"]) | set(s["val"])) - set(known))
            if unknown:
                raise SplitsError(f"{path}: fold {i} names unknown case(s) {unknown[:5]}")
    return splits


def ensure_splits(path: str | Path, case_ids: list[str]) -> tuple[Splits, str]:
    """Load the user's/earlier ``splits_final.json`` or write a new one; returns (splits, message)."""
    path = Path(path)
    if path.is_file():
        splits = read_splits(path, case_ids)
        return splits, f"kept the existing {path.name} ({len(splits)} folds)"
    splits = make_splits(case_ids)
    write_json_atomic(splits, path)
    msg = f"wrote {path.name}: {len(splits)}-fold cross-validation"
    if len(splits) < NUM_FOLDS:
        msg += f" (only {len(case_ids)} cases, so {len(splits)} folds instead of {NUM_FOLDS}: one case per fold)"
    return splits, msg


def fold_cases(splits: Splits | None, fold: int | str, available: list[str],
               source: str = "splits_final.json") -> tuple[list[str], list[str]]:
    """(train, val) case ids of ``fold``; fold ``all`` trains and validates on every case (no split needed)."""
    if str(fold) == "all":
        return sorted(available), sorted(available)
    if splits is None:
        raise SplitsError(f"{source}: not found; run mednext_plan_and_preprocess, which writes it")
    fold = int(fold)
    if not 0 <= fold < len(splits):
        raise SplitsError(f"fold {fold} does not exist: {source} defines folds 0-{len(splits) - 1}")
    train, val = list(splits[fold]["train"]), list(splits[fold]["val"])
    unknown = sorted(set(train + val) - set(available))
    if unknown:
        raise SplitsError(f"{source}: fold {fold} names cases without preprocessed data: {unknown[:5]}")
    if not train:
        raise SplitsError(f"{source}: fold {fold} has no training cases")
    return train, val
