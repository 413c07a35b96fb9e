"""Per-case properties written next to each preprocessed array (``CASE.json``).

Everything inference needs to put a prediction back onto the original grid: the original file's
geometry, the crop box, the shapes before and after cropping, and the spacing and shape before and
after resampling. Export reads these instead of re-deriving them from the plans, so the rules that
made them (2D in-plane spacing, rounding of the new shape) live once, in preprocessing.
All shapes, boxes and spacings here are in the transposed axis order (``plans.transpose_forward``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mednext_fw.io.atomic import write_json_atomic
from mednext_fw.io.image_io import ImageProperties


@dataclass
class CaseProperties:
    case_id: str
    image: ImageProperties  # geometry of the original file (untransposed)
    shape_before_cropping: list[int]
    bbox: list[list[int]]  # [start, stop) per spatial axis, in the transposed order
    shape_after_cropping: list[int]
    spacing: list[float]  # after transpose, before resampling
    spacing_after_resampling: list[float]  # the spacing of the preprocessed array
    shape_after_resampling: list[int]  # the spatial shape of the preprocessed array
    class_locations: dict[str, list[list[int]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CaseProperties":
        d = dict(d)
        d["image"] = ImageProperties.from_dict(d["image"])
        d["bbox"] = [list(map(int, b)) for b in d["bbox"]]
        d["shape_after_resampling"] = [int(s) for s in d["shape_after_resampling"]]
        return cls(**d)

    def save(self, path: str | Path) -> None:
        write_json_atomic(self.to_dict(), path, indent=None)

    @classmethod
    def load(cls, path: str | Path) -> "CaseProperties":
        return cls.from_dict(json.loads(Path(path).read_text()))
