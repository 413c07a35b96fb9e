"""Dataset fingerprint: spacings, shapes after crop-to-nonzero, foreground intensity statistics.

Foreground intensities are subsampled per case (seeded) so the pooled sample stays bounded
(``MAX_SAMPLES_TOTAL`` voxels per channel) however large the dataset is: the statistics are
percentiles and moments, which a few million samples estimate to well below 0.1%.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mednext_fw.io.atomic import write_json_atomic
from mednext_fw.io.cases import list_image_cases, list_label_cases
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import read_images, read_seg
from mednext_fw.planners.plans import IntensityStats
from mednext_fw.planners.cropping import crop_to_nonzero
from mednext_fw.io.parallel import run_parallel

MAX_SAMPLES_TOTAL = 10_000_000
SEED = 1234


@dataclass
class Fingerprint:
    case_ids: list[str]
    spacings: list[list[float]]  # file axis order (Z, Y, X)
    shapes_after_crop: list[list[int]]
    relative_sizes_after_crop: list[float]
    foreground_intensity_properties: dict[str, IntensityStats] = field(default_factory=dict)
    is_2d: bool = False

    @property
    def median_relative_size_after_cropping(self) -> float:
        return float(np.median(self.relative_sizes_after_crop))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["median_relative_size_after_cropping"] = self.median_relative_size_after_cropping
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Fingerprint":
        d = {k: v for k, v in d.items() if k != "median_relative_size_after_cropping"}
        d["foreground_intensity_properties"] = {
            k: IntensityStats.from_dict(v) for k, v in d.get("foreground_intensity_properties", {}).items()}
        return cls(**d)

    def save(self, path: str | Path) -> None:
        write_json_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> "Fingerprint":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _case_fingerprint(job: tuple[list[Path], Path, int, int]) -> dict[str, Any]:
    image_paths, label_path, n_samples, seed = job
    data, props = read_images(image_paths)
    seg, _ = read_seg(label_path)
    shape_before = data.shape[1:]
    data, seg, _, _ = crop_to_nonzero(data, seg)
    fg = seg[0] > 0
    rng = np.random.default_rng(seed)
    samples = []
    for c in range(data.shape[0]):
        values = data[c][fg]
        if values.size > n_samples:
            values = rng.choice(values, n_samples, replace=False)
        samples.append(values.astype(np.float32))
    return {"spacing": [float(s) for s in props.spacing], "shape": [int(s) for s in data.shape[1:]],
            "relative_size": float(np.prod(data.shape[1:]) / np.prod(shape_before)),
            "samples": samples, "is_2d": props.is_2d}


def _stats(values: np.ndarray) -> IntensityStats:
    if values.size == 0:  # no foreground anywhere: neutral statistics rather than NaN
        return IntensityStats(0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    v = values.astype(np.float64)
    p = np.percentile(v, [50.0, 0.5, 99.5])
    return IntensityStats(mean=float(v.mean()), std=float(v.std()), median=float(p[0]), min=float(v.min()),
                          max=float(v.max()), percentile_00_5=float(p[1]), percentile_99_5=float(p[2]))


def extract_fingerprint(raw_dir: str | Path, dataset: DatasetJson, num_processes: int = 2) -> Fingerprint:
    raw_dir = Path(raw_dir)
    images = list_image_cases(raw_dir / "imagesTr", dataset.file_ending)
    labels = list_label_cases(raw_dir / "labelsTr", dataset.file_ending)
    case_ids = sorted(labels)
    per_case = max(1, MAX_SAMPLES_TOTAL // max(1, len(case_ids)))
    jobs = [([images[c][k] for k in sorted(images[c])], labels[c], per_case, SEED + i)
            for i, c in enumerate(case_ids)]
    results = run_parallel(_case_fingerprint, jobs, num_processes, desc="fingerprint")
    stats = {}
    for ch in range(dataset.num_channels):
        stats[str(ch)] = _stats(np.concatenate([r["samples"][ch] for r in results]))
    return Fingerprint(case_ids=case_ids, spacings=[r["spacing"] for r in results],
                       shapes_after_crop=[r["shape"] for r in results],
                       relative_sizes_after_crop=[r["relative_size"] for r in results],
                       foreground_intensity_properties=stats, is_2d=all(r["is_2d"] for r in results))
