"""Cross-validation splits (``splits_final.json``): read, or create nnU-Net style when absent."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mednext_fw.io.atomic import write_json_atomic

NUM_FOLDS = 5
SPLIT_SEED = 12345


class SplitError(ValueError):
    pass


def make_splits(case_ids: list[str], num_folds: int = NUM_FOLDS, seed: int = SPLIT_SEED) -> list[dict[str, list[str]]]:
    """Shuffled k-fold over the sorted case ids; with fewer cases than folds, one case per fold."""
    cases = sorted(case_ids)
    if len(cases) < 2:
        raise SplitError(f"cross-validation needs at least 2 cases, found {len(cases)}; train with fold 'all'")
    k = min(num_folds, len(cases))
    order = np.random.RandomState(seed).permutation(len(cases))
    parts = np.array_split(order, k)
    return [{"train": sorted(cases[i] for j, p in enumerate(parts) if j != f for i in p),
             "val": sorted(cases[i] for i in parts[f])} for f in range(k)]


def load_or_create_splits(path: Path, case_ids: list[str], create: bool = True) -> list[dict[str, list[str]]]:
    path = Path(path)
    if path.is_file():
        try:
            splits = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SplitError(f"{path}: invalid JSON ({exc})") from exc
        if not isinstance(splits, list) or not all(isinstance(s, dict) and {"train", "val"} <= set(s) for s in splits):
            raise SplitError(f"{path}: expected a list of {{'train': [...], 'val': [...]}} objects")
        return splits
    splits = make_splits(case_ids)
    if create:
        write_json_atomic(splits, path)
    return splits


def fold_cases(splits: list[dict[str, list[str]]], fold: int | str, available: list[str],
               source: str = "splits_final.json") -> tuple[list[str], list[str]]:
    """(train, val) case ids of ``fold``; fold ``all`` trains and validates on every case."""
    if str(fold) == "all":
        return sorted(available), sorted(available)
    fold = int(fold)
    if not 0 <= fold < len(splits):
        raise SplitError(f"fold {fold} does not exist: {source} defines folds 0-{len(splits) - 1}")
    train, val = list(splits[fold]["train"]), list(splits[fold]["val"])
    unknown = sorted(set(train + val) - set(available))
    if unknown:
        raise SplitError(f"{source}: fold {fold} names cases without preprocessed data: {unknown[:5]}")
    if not train:
        raise SplitError(f"{source}: fold {fold} has no training cases")
    return train, val
