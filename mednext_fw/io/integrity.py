"""Dataset integrity check: every problem found is reported at once, each naming its file.

Checks: dataset.json schema (every key, before anything is written), consecutive labels,
missing/extra files and channels, files with another ending than ``file_ending``, broken symbolic
links, numTraining, unreadable or corrupt files, zero or non-finite voxel spacings, 4D and
vector-valued images, 2D/3D mixtures, image/label shape and spacing mismatch, NaN/Inf (in NIfTI files
read raw with nibabel, since SimpleITK turns them into 0), and label values not declared in
dataset.json. Origin/direction mismatches are warnings.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from mednext_fw.errors import UserError
from mednext_fw.io.cases import channel_file_name, list_image_cases, list_label_cases
from mednext_fw.io.dataset_json import DatasetJson, DatasetJsonError
from mednext_fw.io.image_io import ImageReadError, read_image, read_seg, truncated_gzip_problem
from mednext_fw.io.nifti import nonfinite_count
from mednext_fw.io.parallel import run_parallel


class IntegrityError(UserError, ValueError):
    def __init__(self, dataset_dir: Path, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{dataset_dir}: the dataset failed the integrity check ({len(problems)} problem(s)):\n"
                         f"{lines}")


def _allowed_label_values(ds: DatasetJson) -> set[int]:
    vals = {0} | set(ds.foreground_labels)
    if ds.ignore_label is not None:
        vals.add(ds.ignore_label)
    return vals


def _label_problems(ds: DatasetJson, source: Path) -> list[str]:
    if ds.has_regions:
        return []
    plain = sorted(int(v) for k, v in ds.labels.items() if k != "ignore")
    if plain != list(range(len(plain))):
        return [f"{source}: label values must be consecutive 0..N, got {plain}"]
    return []


def _check_case(job: tuple[str, list[Path], Path, list[int]]) -> tuple[list[str], list[str], bool | None]:
    case, image_paths, label_path, allowed = job
    problems, notes, ref = [], [], None
    images = []
    truncated = [m for m in map(truncated_gzip_problem, [*image_paths, label_path]) if m]
    if truncated:
        return truncated, notes, None
    for p in image_paths:
        try:
            arr, props = read_image(p)
        except ImageReadError as exc:
            problems.append(str(exc))
            continue
        hidden = nonfinite_count(p)  # what SimpleITK's NIfTI reader silently turned into 0
        shown = int(arr.size - np.count_nonzero(np.isfinite(arr))) if np.issubdtype(arr.dtype, np.floating) else 0
        if hidden or shown:
            problems.append(f"{p}: contains NaN or Inf values ({max(hidden, shown)} voxel(s)); fix or mask them")
        images.append((p, arr.shape[1:], props))
        del arr
    try:
        seg, seg_props = read_seg(label_path)
    except ImageReadError as exc:
        return problems + [str(exc)], notes, None
    if nonfinite_count(label_path):
        problems.append(f"{label_path}: segmentation contains NaN/Inf")
    for p, shape, props in images:
        if props.is_2d != seg_props.is_2d:
            problems.append(f"{p}: is {'2D' if props.is_2d else '3D'} but its label {label_path.name} is "
                            f"{'2D' if seg_props.is_2d else '3D'}")
        elif shape != seg.shape[1:]:
            problems.append(f"{p}: shape {tuple(shape)} differs from its label {label_path.name} {seg.shape[1:]}")
        elif not np.allclose(props.spacing, seg_props.spacing, rtol=1e-3):
            problems.append(f"{p}: spacing {props.spacing} differs from its label {label_path.name} "
                            f"{seg_props.spacing}")
        elif props.sitk_origin and not np.allclose(props.sitk_origin, seg_props.sitk_origin, atol=1e-3):
            notes.append(f"{p}: origin differs from its label's (warning only)")
        elif props.sitk_direction and not np.allclose(props.sitk_direction, seg_props.sitk_direction, atol=1e-3):
            notes.append(f"{p}: direction differs from its label's (warning only)")
        ref = props.is_2d
    values = np.unique(seg)
    bad = [int(v) for v in values if int(v) not in allowed]
    if bad:
        problems.append(f"{label_path}: label value(s) {bad[:10]} are not declared in dataset.json "
                        f"(allowed: {sorted(allowed)})")
    return problems, notes, ref


def _stray_files(folder: Path, file_ending: str) -> list[str]:
    """Files the listing would skip silently: another ending than dataset.json's, or broken links."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_symlink() and not p.exists():
            out.append(f"{p}: broken symbolic link (its target {p.readlink()} does not exist)")
        elif p.is_file() and not p.name.endswith(file_ending):
            out.append(f"{p}: its ending differs from dataset.json's file_ending '{file_ending}'; rename or "
                       "convert it (all files of a dataset share one format)")
    return out


def verify_dataset(dataset_dir: str | Path, num_processes: int = 2) -> DatasetJson:
    """Check a raw dataset folder; returns its ``DatasetJson`` or raises ``IntegrityError``."""
    dataset_dir = Path(dataset_dir)
    try:
        ds = DatasetJson.load(dataset_dir / "dataset.json")
    except DatasetJsonError as exc:
        raise IntegrityError(dataset_dir, [str(exc)]) from None
    problems = _label_problems(ds, dataset_dir / "dataset.json")
    img_dir, lab_dir = dataset_dir / "imagesTr", dataset_dir / "labelsTr"
    for d in (img_dir, lab_dir):
        if not d.is_dir():
            problems.append(f"{d}: folder missing")
    if problems:
        raise IntegrityError(dataset_dir, problems)
    problems += _stray_files(img_dir, ds.file_ending) + _stray_files(lab_dir, ds.file_ending)
    images = list_image_cases(img_dir, ds.file_ending)
    labels = list_label_cases(lab_dir, ds.file_ending)
    if not labels:
        problems.append(f"{lab_dir}: no label files ending in '{ds.file_ending}'")
    for case in sorted(set(images) - set(labels)):
        problems.append(f"{img_dir / channel_file_name(case, 0, ds.file_ending)}: image without a label "
                        f"{case}{ds.file_ending}")
    expected = set(range(ds.num_channels))
    jobs = []
    for case in sorted(labels):
        have = set(images.get(case, {}))
        for ch in sorted(expected - have):
            problems.append(f"{img_dir / channel_file_name(case, ch, ds.file_ending)}: missing (dataset.json declares "
                            f"{ds.num_channels} channel(s))")
        for ch in sorted(have - expected):
            problems.append(f"{images[case][ch]}: unexpected channel {ch} (dataset.json declares "
                            f"{ds.num_channels} channel(s))")
        if have == expected:
            jobs.append((case, [images[case][c] for c in sorted(have)], labels[case],
                         sorted(_allowed_label_values(ds))))
    if ds.num_training != len(labels):
        problems.append(f"{dataset_dir / 'dataset.json'}: numTraining is {ds.num_training} but labelsTr holds "
                        f"{len(labels)} case(s)")
    results = run_parallel(_check_case, jobs, num_processes, desc="integrity check")
    dims = {}
    for (case, *_), (case_problems, notes, is_2d) in zip(jobs, results):
        problems.extend(case_problems)
        for n in notes:
            warnings.warn(n, stacklevel=2)
        if is_2d is not None:
            dims.setdefault(is_2d, []).append(case)
    if len(dims) == 2:
        problems.append(f"mixture of 2D and 3D cases: 2D {dims[True][:5]}, 3D {dims[False][:5]}")
    if problems:
        raise IntegrityError(dataset_dir, problems)
    return ds
