"""Ensembles of prediction folders: average their saved probabilities, write one label map per case.

Each input folder holds, per case, the label map ``CASE<ending>`` (its geometry is what the output
takes) and ``CASE.npz`` with key ``probabilities``, shape ``(K, *native array shape)``: what
``mednext_predict --save-probabilities`` and the training's final validation (``--npz``) write.
Every folder must hold the same cases, each with probabilities of the same shape; otherwise nothing
is written and the error names the folders and cases. Outputs are written atomically, probabilities
first, and finished cases are skipped on a re-run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from mednext_fw.inference.export_pool import ExportPool
from mednext_fw.errors import UserError
from mednext_fw.io.atomic import atomic_path
from mednext_fw.io.cases import list_label_cases
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import read_seg, write_seg

PROBABILITIES_KEY = "probabilities"


class EnsembleError(UserError, ValueError):
    """The folders cannot be ensembled as given."""


def _listing(items: Sequence[str], limit: int = 5) -> str:
    items = sorted(items)
    return ", ".join(items[:limit]) + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def find_dataset_json(folder: str | Path) -> Path | None:
    """``dataset.json`` in the folder, or in the model folder above a ``fold_k/validation`` folder."""
    folder = Path(folder).resolve()
    for d in (folder, folder.parent, folder.parent.parent):
        if (d / "dataset.json").is_file():
            return d / "dataset.json"
    return None


def probabilities_to_labels(probs: np.ndarray, dataset: DatasetJson) -> np.ndarray:
    """``(K, *S)`` probabilities -> label map: argmax (ties keep the lower class) or, for regions,
    each region above 0.5 painted in ``regions_class_order``."""
    if not dataset.has_regions:
        return np.argmax(probs, 0).astype(np.int32)
    order = dataset.regions_class_order or list(range(1, probs.shape[0] + 1))
    seg = np.zeros(probs.shape[1:], np.int32)
    for k in range(probs.shape[0]):
        seg[probs[k] > 0.5] = order[k]
    return seg


def load_probabilities(path: str | Path) -> np.ndarray:
    try:
        with np.load(path) as f:
            return np.asarray(f[PROBABILITIES_KEY], dtype=np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise EnsembleError(f"{path}: not a readable probabilities file with key '{PROBABILITIES_KEY}' ({exc})") \
            from exc


def match_ensemble_cases(folders: Sequence[Path], file_ending: str) -> dict[str, list[tuple[Path, Path]]]:
    """``{case: [(label file, probabilities file) per folder]}``; refuses differing case sets and
    missing probabilities, naming them."""
    if len(folders) < 2:
        raise EnsembleError(f"an ensemble needs at least two folders, got {len(folders)}")
    per_folder = []
    for d in folders:
        if not d.is_dir():
            raise EnsembleError(f"{d}: prediction folder not found")
        labels = list_label_cases(d, file_ending)
        if not labels:
            raise EnsembleError(f"{d}: no predictions ending in {file_ending}")
        per_folder.append(labels)
    first = set(per_folder[0])
    for d, labels in zip(folders[1:], per_folder[1:]):
        if set(labels) != first:
            only_a, only_b = sorted(first - set(labels)), sorted(set(labels) - first)
            raise EnsembleError(f"{folders[0]} and {d} hold different cases (only in the first: "
                                f"{_listing(only_a) or 'none'}; only in the second: {_listing(only_b) or 'none'})")
    missing = [str(d / f"{c}.npz") for d, labels in zip(folders, per_folder) for c in labels
               if not (d / f"{c}.npz").is_file()]
    if missing:
        raise EnsembleError(f"missing probabilities (predict with --save-probabilities, or train with --npz): "
                            f"{_listing(missing)}")
    return {c: [(labels[c], d / f"{c}.npz") for d, labels in zip(folders, per_folder)] for c in sorted(first)}


def average_probabilities(files: Sequence[Path]) -> np.ndarray:
    total = None
    for f in files:
        p = load_probabilities(f)
        if total is None:
            total = p
        elif p.shape != total.shape:
            raise EnsembleError(f"{f}: probabilities of shape {p.shape} differ from {files[0]} {total.shape}")
        else:
            total += p
    return total / len(files)


def ensemble_case(members: Sequence[tuple[Path, Path]], dataset: DatasetJson, output_path: Path,
                  probabilities_path: Path | None = None) -> Path:
    probs = average_probabilities([npz for _, npz in members])
    template, props = read_seg(members[0][0])
    if tuple(template.shape[1:]) != tuple(probs.shape[1:]):
        raise EnsembleError(f"{members[0][1]}: probabilities of spatial shape {probs.shape[1:]} do not match "
                            f"the label map {members[0][0]} {template.shape[1:]}")
    if probabilities_path is not None:
        with atomic_path(probabilities_path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **{PROBABILITIES_KEY: probs})
    write_seg(probabilities_to_labels(probs, dataset), props, output_path)
    return output_path


def ensemble_folders(folders: Sequence[str | Path], output_dir: str | Path, dataset: DatasetJson | None = None,
                     save_probabilities: bool = False, num_workers: int = 0, overwrite: bool = False,
                     progress: bool = True) -> list[Path]:
    """Average the probabilities of ``folders`` case by case into ``output_dir``; returns the label files."""
    folders = [Path(f) for f in folders]
    output_dir = Path(output_dir)
    if any(output_dir.resolve() == f.resolve() for f in folders):
        raise EnsembleError(f"-o {output_dir} must differ from the input folders")
    if dataset is None:
        found = find_dataset_json(folders[0])
        if found is None:
            raise EnsembleError(f"{folders[0]}: no dataset.json in the folder or its model folder; pass one")
        dataset = DatasetJson.load(found)
    cases = match_ensemble_cases(folders, dataset.file_ending)
    output_dir.mkdir(parents=True, exist_ok=True)
    dataset.save(output_dir / "dataset.json")  # so the result can be ensembled or postprocessed again
    outputs, jobs = [], []
    for case, members in cases.items():
        out = output_dir / f"{case}{dataset.file_ending}"
        prob = output_dir / f"{case}.npz" if save_probabilities else None
        outputs.append(out)
        if overwrite or not (out.is_file() and (prob is None or prob.is_file())):
            jobs.append((members, dataset, out, prob))
    with ExportPool(num_workers) as pool:
        for job in tqdm(jobs, desc="ensembling", unit="case", disable=not (progress and jobs)):
            pool.submit(ensemble_case, *job)
    return outputs
