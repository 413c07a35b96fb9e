"""Preprocess a whole raw dataset for the planned configurations (parallel, resumable, atomic).

A case is finished when its ``CASE.json`` exists: it is written last, after both arrays, so an
interrupted run leaves at most temporary files and the next run redoes only unfinished cases.
Each configuration folder holds ``configuration.json``, the plan it was made with; when the plans
change, the folder's old cases are stale and are removed before preprocessing again.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from mednext_fw.io.atomic import atomic_path, save_npy_atomic, write_json_atomic
from mednext_fw.io.cases import list_image_cases, list_label_cases
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import read_images, read_seg
from mednext_fw.planners.plans import Configuration, Plans
from mednext_fw.preprocessing.parallel import run_parallel
from mednext_fw.preprocessing.pipeline import preprocess_case

CONFIG_SNAPSHOT = "configuration.json"


def _snapshot(plans: Plans, config: Configuration) -> dict:
    """What the arrays depend on; training-only choices (patch, batch, network) are left out."""
    return {"transpose_forward": plans.transpose_forward, "configuration": _config_dict(config),
            "foreground_intensity_properties": {k: vars(v) for k, v in
                                                plans.foreground_intensity_properties.items()}}


def _config_dict(config: Configuration) -> dict:
    from dataclasses import asdict

    d = asdict(config)
    for volatile in ("batch_size", "patch_size", "median_image_size", "network", "batch_dice", "mirror_axes", "previous_stage",
                     "next_stage", "extra"):
        d.pop(volatile, None)
    return d


def _case_done(out_dir: Path, case: str) -> bool:
    return all((out_dir / f"{case}{s}").is_file() for s in (".npy", "_seg.npy", ".json"))


def _preprocess_one(job: tuple) -> str:
    case, image_paths, label_path, plans, config, dataset, out_dir = job
    data, props = read_images(image_paths)
    seg, _ = read_seg(label_path)
    data, seg, case_props = preprocess_case(data, props, seg.astype(np.int16), plans, config, dataset, case)
    save_npy_atomic(data, out_dir / f"{case}.npy")
    save_npy_atomic(seg, out_dir / f"{case}_seg.npy")
    case_props.save(out_dir / f"{case}.json")  # last: marks the case as finished
    return case


def prepare_config_folder(out_dir: Path, plans: Plans, config: Configuration) -> str | None:
    """Create the folder; wipe cases made with different plans. Returns a message when it wiped."""
    snap = _snapshot(plans, config)
    snap_path = out_dir / CONFIG_SNAPSHOT
    msg = None
    if out_dir.is_dir():
        old = json.loads(snap_path.read_text()) if snap_path.is_file() else None
        if old != json.loads(json.dumps(snap)):
            shutil.rmtree(out_dir)
            msg = f"{out_dir.name}: the plans changed, old preprocessed cases removed"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(snap, snap_path)
    return msg


def preprocess_configuration(raw_dir: Path, out_root: Path, plans: Plans, config: Configuration,
                             dataset: DatasetJson, num_processes: int) -> tuple[int, int]:
    """Returns (cases processed now, cases already done)."""
    out_dir = out_root / config.data_identifier
    images = list_image_cases(raw_dir / "imagesTr", dataset.file_ending)
    labels = list_label_cases(raw_dir / "labelsTr", dataset.file_ending)
    cases = sorted(labels)
    todo = [c for c in cases if not _case_done(out_dir, c)]
    jobs = [(c, [images[c][k] for k in sorted(images[c])], labels[c], plans, config, dataset, out_dir)
            for c in todo]
    run_parallel(_preprocess_one, jobs, num_processes, desc=f"preprocess {config.name}")
    return len(todo), len(cases) - len(todo)


def copy_gt_segmentations(raw_dir: Path, out_root: Path, dataset: DatasetJson) -> None:
    dst = out_root / "gt_segmentations"
    dst.mkdir(parents=True, exist_ok=True)
    for case, src in list_label_cases(raw_dir / "labelsTr", dataset.file_ending).items():
        target = dst / src.name
        if not target.is_file():
            with atomic_path(target) as tmp:
                shutil.copyfile(src, tmp)
