"""Cross-validation splits (``splits_final.json``): read, or create nnU-Net style when absent."""
from __future__ import annotations

import json
from pathlib import Path

from mednext_fw.io.atomic import write_json_atomic
from mednext_fw.planners.splits import NUM_FOLDS, SplitsError, make_splits

# One fold rule for the whole project: planning writes splits_final.json with the same function,
# so a trainer that has to create the file (preprocessing skipped it) makes the identical folds.
SplitError = SplitsError
__all__ = ["NUM_FOLDS", "SplitError", "make_splits", "load_or_create_splits", "fold_cases"]


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
