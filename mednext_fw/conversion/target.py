"""Choosing the ``DatasetNNN_Name`` folder a conversion writes.

IDs are checked against every data root that is set (raw, preprocessed, results), because
`mednext_fw.io.lookup.find_dataset` searches all three: an ID or a name used twice would make
``-d 17`` or ``-d BTCV`` ambiguous later on.
"""
from __future__ import annotations

import re
from pathlib import Path

from mednext_fw import paths
from mednext_fw.conversion.common import ConversionError
from mednext_fw.io.lookup import dataset_id_and_name

MAX_ID = 999
_FOLDER_RE = re.compile(r"^Dataset\d{3}_.+$")


def _roots(output_root: Path) -> list[Path]:
    others = [paths.preprocessed_root(False), paths.results_root(False)]
    return [output_root] + [r for r in others if r is not None and r != output_root]


def existing_datasets(roots: list[Path]) -> dict[str, Path]:
    """``DatasetNNN_Name`` -> the first root that holds it."""
    out: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for p in sorted(root.iterdir()):
                if p.is_dir() and _FOLDER_RE.match(p.name):
                    out.setdefault(p.name, root)
    return out


def folder_name(dataset_id: int, name: str) -> str:
    return f"Dataset{dataset_id:03d}_{name}"


def choose_folder(name: str, output_root: Path, dataset_id: int | None = None,
                  preferred_id: int | None = None) -> str:
    """The target folder name for dataset ``name``.

    Without ``dataset_id``: an existing dataset of the same name keeps its ID (so a re-run hits the
    same folder and is refused unless ``--overwrite``); otherwise ``preferred_id`` if free, else the
    highest ID in use + 1 (the lowest free ID once 999 is taken).
    """
    existing = existing_datasets(_roots(output_root))
    by_id: dict[int, set[str]] = {}
    for folder in existing:
        i, n = dataset_id_and_name(folder)
        by_id.setdefault(i, set()).add(n)
    same_name = sorted(f for f in existing if dataset_id_and_name(f)[1].lower() == name.lower())

    if dataset_id is not None:
        if not 1 <= dataset_id <= MAX_ID:
            raise ConversionError(f"dataset ID must be between 1 and {MAX_ID}, got {dataset_id}")
        others = sorted(n for n in by_id.get(dataset_id, ()) if n != name)
        if others:
            taken = folder_name(dataset_id, others[0])
            raise ConversionError(f"ID {dataset_id} is already used by {taken} (in {existing[taken]}); "
                                  "choose another -d or leave it out to take the next free ID")
        clash = [f for f in same_name if dataset_id_and_name(f)[0] != dataset_id]
        if clash:
            raise ConversionError(f"a dataset named {name!r} already exists as {clash[0]} (in {existing[clash[0]]}), "
                                  f"so '-d {name}' would become ambiguous; use --name for another name "
                                  f"or -d {dataset_id_and_name(clash[0])[0]} --overwrite to replace it")
        return folder_name(dataset_id, name)

    if same_name:
        ids = sorted({dataset_id_and_name(f)[0] for f in same_name})
        if len(ids) > 1:
            raise ConversionError(f"several datasets are named {name!r}: {', '.join(same_name)}; pass -d")
        return folder_name(ids[0], name)
    if preferred_id is not None and 1 <= preferred_id <= MAX_ID and preferred_id not in by_id:
        return folder_name(preferred_id, name)
    candidate = max(by_id, default=0) + 1
    if candidate > MAX_ID:
        free = [i for i in range(1, MAX_ID + 1) if i not in by_id]
        if not free:
            raise ConversionError(f"every dataset ID 1..{MAX_ID} is in use")
        candidate = free[0]
    return folder_name(candidate, name)
