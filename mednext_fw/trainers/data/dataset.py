"""Read access to one configuration's preprocessed arrays (``CASE.npy``, ``CASE_seg.npy``, ``CASE.json``).

Arrays are memory-mapped, so a patch read touches only the pages it needs and worker processes share
the page cache instead of holding copies.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class PreprocessedDataError(ValueError):
    pass


@dataclass
class CaseArrays:
    case_id: str
    data: np.ndarray  # (C, *spatial) float32, memory-mapped
    seg: np.ndarray  # (1, *spatial) int16, -1 outside the nonzero region
    properties: dict[str, Any]  # raw CASE.json (see preprocessing.case_properties.CaseProperties)

    @property
    def class_locations(self) -> dict[str, list[list[int]]]:
        return self.properties.get("class_locations", {}) or {}


class PreprocessedDataset:
    def __init__(self, folder: str | Path, case_ids: list[str]):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise PreprocessedDataError(
                f"{self.folder}: preprocessed folder not found (run mednext_plan_and_preprocess for this configuration)"
            )
        missing = [c for c in case_ids if not (self.folder / f"{c}.npy").is_file()]
        if missing:
            raise PreprocessedDataError(
                f"{self.folder}: {len(missing)} case(s) of the split have no preprocessed array, e.g. "
                f"{missing[:3]}; re-run mednext_plan_and_preprocess (it resumes unfinished cases)"
            )
        self.case_ids = list(case_ids)
        self._props: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.case_ids)

    def properties(self, case_id: str) -> dict[str, Any]:
        if case_id not in self._props:
            path = self.folder / f"{case_id}.json"
            try:
                self._props[case_id] = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise PreprocessedDataError(f"{path}: cannot read case properties ({exc})") from exc
        return self._props[case_id]

    def load(self, case_id: str) -> CaseArrays:
        data_path = self.folder / f"{case_id}.npy"
        seg_path = self.folder / f"{case_id}_seg.npy"
        try:
            data = np.load(data_path, mmap_mode="r")
            seg = np.load(seg_path, mmap_mode="r") if seg_path.is_file() else None
        except (OSError, ValueError) as exc:
            raise PreprocessedDataError(f"{data_path}: cannot memory-map the preprocessed array ({exc})") from exc
        if seg is None:
            raise PreprocessedDataError(f"{seg_path}: segmentation array missing; training needs labels")
        if data.shape[1:] != seg.shape[1:]:
            raise PreprocessedDataError(
                f"{data_path}: image {data.shape} and segmentation {seg.shape} have different spatial shapes"
            )
        return CaseArrays(case_id, data, seg, self.properties(case_id))
