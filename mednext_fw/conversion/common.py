"""What every converter shares: the conversion plan, source listing and header checks.

A converter (BTCV, Decathlon, plain folders) only *describes* the dataset as a `ConversionPlan`;
`mednext_fw.conversion.writer` then turns that plan into a raw dataset folder. Every problem the
plan can be checked for without decompressing voxels (missing partners, channel counts, shapes,
spacings) is found here, before anything is written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mednext_fw.errors import UserError
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io import image_io
from mednext_fw.io.image_io import NATURAL_2D_ENDINGS, SITK_ENDINGS, file_ending_of

DATASET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
SPACING_RTOL = 1e-3


class ConversionError(UserError, ValueError):
    """The source cannot be converted; the message names the file(s) and the problem."""


@dataclass(frozen=True)
class CaseSpec:
    """One case: either one 3D file per channel, or a single 4D file holding every channel."""

    case_id: str
    images: tuple[Path, ...]
    label: Path | None = None


@dataclass
class ConversionPlan:
    name: str
    dataset: DatasetJson
    training: list[CaseSpec]
    test: list[CaseSpec] = field(default_factory=list)
    source: Path | None = None
    preferred_id: int | None = None  # e.g. a Decathlon task's number

    def __post_init__(self) -> None:
        if not DATASET_NAME_RE.match(self.name):
            raise ConversionError(f"dataset name {self.name!r} must be letters, digits, '_', '-', '.' or '+' "
                                  "(it becomes part of the folder name DatasetNNN_<name>)")
        if not self.training:
            raise ConversionError(f"{self.source or self.name}: no training cases found")
        self.dataset.num_training = len(self.training)


def list_files(folder: Path) -> list[Path]:
    """Regular files in ``folder``, sorted; hidden files and macOS ``._`` resource forks skipped."""
    if not folder.is_dir():
        raise ConversionError(f"{folder}: folder not found")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def split_ending(path: Path) -> tuple[str, str]:
    """``img0001.nii.gz`` -> (``img0001``, ``.nii.gz``); refuses formats no reader of ours opens."""
    ending = file_ending_of(path)
    if ending not in SITK_ENDINGS + NATURAL_2D_ENDINGS:
        raise ConversionError(f"{path}: unsupported file type {ending!r} (supported: "
                              f"{', '.join(SITK_ENDINGS + NATURAL_2D_ENDINGS)})")
    return path.name[: -len(ending)], ending


def common_ending(paths: list[Path], what: str) -> str:
    endings = {split_ending(p)[1] for p in paths}
    if len(endings) > 1:
        raise ConversionError(f"{what}: mixed file types {sorted(endings)}; one format per dataset")
    return endings.pop()


def match_pairs(images: dict[str, Path], labels: dict[str, Path], image_dir: Path, label_dir: Path) -> None:
    """Raise naming every image without a label and every label without an image."""
    no_label = sorted(set(images) - set(labels))
    no_image = sorted(set(labels) - set(images))
    problems = []
    if no_label:
        problems.append("image(s) without a label in " + f"{label_dir}: "
                        + ", ".join(images[k].name for k in no_label))
    if no_image:
        problems.append("label(s) without an image in " + f"{image_dir}: "
                        + ", ".join(labels[k].name for k in no_image))
    if problems:
        raise ConversionError("; ".join(problems))


@dataclass(frozen=True)
class Header:
    dim: int
    size: tuple[int, ...]  # SimpleITK (x, y, z[, t]) order
    spacing: tuple[float, ...]


def read_header(path: Path) -> Header | None:
    """Size and spacing without reading the voxels; None for natural 2D images (no geometry)."""
    if file_ending_of(path) in NATURAL_2D_ENDINGS:
        return None
    try:
        h = image_io.read_header(path)
    except image_io.ImageReadError as exc:
        raise ConversionError(str(exc)) from exc
    return Header(h.dimension, h.size, h.spacing)


def check_case(case: CaseSpec, num_channels: int) -> None:
    """Channel count, and that every channel and the label share one grid (size and spacing)."""
    headers = [(p, read_header(p)) for p in case.images]
    if any(h is None for _, h in headers):
        if len(case.images) != num_channels:
            raise ConversionError(f"case {case.case_id}: {len(case.images)} image file(s), expected {num_channels}")
        return
    if len(headers) == 1 and headers[0][1].dim == 4:
        path, h = headers[0]
        if h.size[3] != num_channels:
            raise ConversionError(f"{path}: 4D image with {h.size[3]} frame(s), but the dataset declares "
                                  f"{num_channels} channel(s)")
        grid = (h.size[:3], h.spacing[:3])
    else:
        for path, h in headers:
            if h.dim == 4:
                raise ConversionError(f"{path}: a 4D image cannot be one channel among several files")
            if h.dim not in (2, 3):
                raise ConversionError(f"{path}: {h.dim}D images are not supported")
        if len(headers) != num_channels:
            raise ConversionError(f"case {case.case_id}: {len(headers)} channel file(s) "
                                  f"({', '.join(p.name for p, _ in headers)}), expected {num_channels}")
        grid = (headers[0][1].size, headers[0][1].spacing)
        for path, h in headers[1:]:
            _same_grid(path, (h.size, h.spacing), case.images[0], grid)
    if case.label is not None:
        h = read_header(case.label)
        if h.dim == 4:
            raise ConversionError(f"{case.label}: a label map must be 2D or 3D, found a 4D image")
        _same_grid(case.label, (h.size, h.spacing), case.images[0], grid)


def _same_grid(path: Path, grid: tuple, ref_path: Path, ref: tuple) -> None:
    if tuple(grid[0]) != tuple(ref[0]):
        raise ConversionError(f"{path}: shape {tuple(grid[0])} does not match {ref_path.name} {tuple(ref[0])} "
                              "(SimpleITK x, y, z order)")
    if not np.allclose(grid[1], ref[1], rtol=SPACING_RTOL):
        raise ConversionError(f"{path}: spacing {tuple(round(s, 5) for s in grid[1])} does not match "
                              f"{ref_path.name} {tuple(round(s, 5) for s in ref[1])}")
