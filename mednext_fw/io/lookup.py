"""Resolve ``-d 17``, ``-d 017``, ``-d BTCV`` or ``-d Dataset017_BTCV`` to a dataset folder name."""
from __future__ import annotations

import re
from pathlib import Path

from mednext_fw import paths
from mednext_fw.errors import UserError

_DATASET_RE = re.compile(r"^Dataset(\d{3})_(.+)$")


class DatasetNotFoundError(UserError, LookupError):
    def __str__(self) -> str:
        return str(self.args[0])


def _candidates(roots: list[Path]) -> set[str]:
    names = set()
    for root in roots:
        if root is not None and root.is_dir():
            names.update(p.name for p in root.iterdir() if p.is_dir() and _DATASET_RE.match(p.name))
    return names


def dataset_id_and_name(folder_name: str) -> tuple[int, str]:
    m = _DATASET_RE.match(folder_name)
    if not m:
        raise ValueError(f"'{folder_name}' is not a Dataset###_Name folder name")
    return int(m.group(1)), m.group(2)


def find_dataset(query: str | int, roots: list[Path] | None = None) -> str:
    """Return the unique ``Dataset###_Name`` matching ``query`` across the given (default: all) roots."""
    if roots is None:
        roots = [r for r in (paths.raw_root(False), paths.preprocessed_root(False), paths.results_root(False)) if r]
        if not roots:
            paths.raw_root(True)  # raises the error naming the variable
    names = _candidates(roots)
    q = str(query).strip()
    if q in names:
        return q
    if q.isdigit():
        matches = {n for n in names if dataset_id_and_name(n)[0] == int(q)}
    else:
        matches = {n for n in names if dataset_id_and_name(n)[1].lower() == q.lower()}
        if not matches and _DATASET_RE.match(q):
            matches = set()
    where = ", ".join(str(r) for r in roots)
    if not matches:
        existing = ", ".join(sorted(names)) or "none"
        raise DatasetNotFoundError(f"No dataset matches '{q}' in {where}. Existing datasets: {existing}")
    if len(matches) > 1:
        raise DatasetNotFoundError(f"'{q}' is ambiguous: {', '.join(sorted(matches))}. Use the full name.")
    return matches.pop()
