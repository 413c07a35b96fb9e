"""Input folders for prediction: group channel files into cases and check them before any work.

``CASE_0000<ending>``, ``CASE_0001<ending>``, ... form one case; a single-channel model also takes
``CASE<ending>``. The checks read headers, decompress ``.gz`` streams to their end and read NIfTI
data for NaN/Inf (cheap next to inference), so a bad file anywhere stops the run before anything is written.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mednext_fw.errors import UserError
from mednext_fw.io.cases import channel_file_name, split_channel
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import (NATURAL_2D_ENDINGS, SITK_ENDINGS, ImageReadError, file_ending_of, read_header,
                                    truncated_gzip_problem)
from mednext_fw.io.nifti import nonfinite_count


class InputFileError(UserError, ValueError):
    pass


def _is_image(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and file_ending_of(p) in SITK_ENDINGS + NATURAL_2D_ENDINGS


def collect_cases(folder: str | Path, dataset: DatasetJson) -> dict[str, list[Path]]:
    """``{case_id: [channel 0 file, channel 1 file, ...]}``; every case must have every channel."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(f"{folder}: input folder not found")
    n_ch = dataset.num_channels
    channels: dict[str, dict[int, Path]] = {}
    for p in sorted(folder.iterdir()):
        if not _is_image(p):
            continue
        stem = p.name[: -len(file_ending_of(p))]
        case, ch = split_channel(stem) or (stem, None)
        if ch is None:
            if n_ch != 1:
                raise InputFileError(f"{p}: the model needs {n_ch} channels per case; name the files "
                                     f"{channel_file_name(stem, 0, file_ending_of(p))} ... "
                                     f"{channel_file_name(stem, n_ch - 1, file_ending_of(p))}")
            ch = 0
        if ch >= n_ch:
            raise InputFileError(f"{p}: channel {ch} but the model has {n_ch} channel(s) "
                                 f"({', '.join(dataset.channel_name_list)})")
        if ch in channels.setdefault(case, {}):
            raise InputFileError(f"{p}: case '{case}' channel {ch} is also given by {channels[case][ch]}")
        channels[case][ch] = p
    if not channels:
        raise InputFileError(f"{folder}: no image files (expected CASE_0000{dataset.file_ending})")
    out = {}
    for case, chans in channels.items():
        missing = [c for c in range(n_ch) if c not in chans]
        if missing:
            ending = file_ending_of(next(iter(chans.values())))
            names = ", ".join(channel_file_name(case, c, ending) for c in missing)
            raise InputFileError(f"{folder}: case '{case}' is missing channel file(s) {names}")
        endings = {file_ending_of(p) for p in chans.values()}
        if len(endings) > 1:
            raise InputFileError(f"{folder}: case '{case}' mixes file formats {sorted(endings)}")
        out[case] = [chans[c] for c in range(n_ch)]
    return out


def _header(path: Path) -> tuple[int, tuple[int, ...]]:
    """(dimension, size) from the header alone."""
    try:
        header = read_header(path)
    except ImageReadError as exc:
        raise InputFileError(str(exc)) from exc
    return header.dimension, header.size


def check_inputs(cases: dict[str, list[Path]], model_dim: int) -> None:
    """Every file readable to its end, of a dimensionality the model can take, channels of one size."""
    for case, files in cases.items():
        first_size = None
        for p in files:
            dim, size = _header(p)
            problem = truncated_gzip_problem(p)  # SimpleITK would silently read the missing part as zeros
            if problem:
                raise InputFileError(problem)
            hidden = nonfinite_count(p)  # SimpleITK's NIfTI reader would silently turn them into 0
            if hidden:
                raise InputFileError(f"{p}: contains NaN or Inf values ({hidden} voxel(s)); fix or mask them")
            if dim not in (2, 3):
                raise InputFileError(f"{p}: is a {dim}D image; expected a 3D volume (or a 2D image for 2D models)")
            if model_dim == 3 and dim != 3:
                raise InputFileError(f"{p}: is a {dim}D image but the model is 3D")
            if first_size is None:
                first_size = size
            elif size != first_size:
                raise InputFileError(f"{p}: size {size} differs from {files[0]} {first_size}")


def require_finite(data: np.ndarray, files: list[Path]) -> None:
    """NaN/Inf in image data as read (formats whose reader keeps them, e.g. NRRD): refused, naming the
    files, before anything of the case is written; NIfTI files were checked by :func:`check_inputs`."""
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise InputFileError(f"{', '.join(str(f) for f in files)}: contains NaN or Inf values ({bad} voxel(s)); "
                             "fix or mask them")
