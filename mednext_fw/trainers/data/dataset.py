"""Training's read access to one configuration's preprocessed cases (through ``CaseFolder``).

Arrays are memory-mapped, so a patch read touches only the pages it needs and worker processes share
the page cache instead of holding copies. Every case is checked to be completely preprocessed when
the dataset is made, so an interrupted preprocess is refused up front, naming the cases, instead of
crashing somewhere in epoch 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mednext_fw.preprocessing.case_properties import CaseProperties
from mednext_fw.preprocessing.folder import CaseFolder, PreprocessedDataError

__all__ = ["CaseArrays", "PreprocessedDataset", "PreprocessedDataError"]


@dataclass
class CaseArrays:
    case_id: str
    data: np.ndarray  # (C, *spatial) float32, memory-mapped
    seg: np.ndarray  # (1, *spatial) int16, -1 outside the nonzero region
    properties: CaseProperties

    @property
    def class_locations(self) -> dict[str, list[list[int]]]:
        return self.properties.class_locations or {}


class PreprocessedDataset:
    def __init__(self, folder: CaseFolder | str | Path, case_ids: list[str]):
        self.folder = folder if isinstance(folder, CaseFolder) else CaseFolder(Path(folder))
        self.folder.require_complete(list(case_ids))
        self.case_ids = list(case_ids)
        self._props: dict[str, CaseProperties] = {}

    def __len__(self) -> int:
        return len(self.case_ids)

    def properties(self, case_id: str) -> CaseProperties:
        if case_id not in self._props:
            self._props[case_id] = self.folder.read_properties(case_id)
        return self._props[case_id]

    def load(self, case_id: str) -> CaseArrays:
        data = self.folder.read_data(case_id)
        seg = self.folder.read_seg(case_id)
        if data.shape[1:] != seg.shape[1:]:
            raise PreprocessedDataError(
                f"{self.folder.data_file(case_id)}: image {data.shape} and segmentation {seg.shape} have different "
                "spatial shapes; re-run mednext_plan_and_preprocess with --clean")
        return CaseArrays(case_id, data, seg, self.properties(case_id))
