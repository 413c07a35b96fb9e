"""Preprocess a whole raw dataset for the planned configurations (parallel, resumable, atomic).

The layout and the notion of a finished case belong to ``PreprocessedFolder`` (see
``preprocessing.folder``); this module only decides what to compute. A re-run redoes only unfinished
cases; when the plans change, the configuration's old cases are stale and are removed first.
"""
from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mednext_fw.io.atomic import atomic_path
from mednext_fw.io.cases import list_image_cases, list_label_cases
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import read_images, read_seg
from mednext_fw.io.parallel import run_parallel
from mednext_fw.planners.plans import Configuration, Plans
from mednext_fw.preprocessing.folder import CaseFolder, PreprocessedFolder
from mednext_fw.preprocessing.pipeline import preprocess_case


def _made_with(plans: Plans, config: Configuration) -> dict:
    """What the arrays depend on; training-only choices (patch, batch, network) are left out."""
    d = asdict(config)
    for volatile in ("batch_size", "patch_size", "median_image_size", "network", "batch_dice", "mirror_axes",
                     "previous_stage", "next_stage", "extra"):
        d.pop(volatile, None)
    return {"transpose_forward": plans.transpose_forward, "configuration": d,
            "foreground_intensity_properties": {k: vars(v) for k, v in
                                                plans.foreground_intensity_properties.items()}}


def _preprocess_one(job: tuple) -> str:
    case, image_paths, label_path, plans, config, dataset, folder = job
    data, props = read_images(image_paths)
    seg, _ = read_seg(label_path)
    data, seg, case_props = preprocess_case(data, props, seg.astype(np.int16), plans, config, dataset, case)
    folder.write_case(case, data, seg, case_props)
    return case


def prepare_config_folder(folder: CaseFolder, plans: Plans, config: Configuration, cases: list[str]) -> str | None:
    """Create the folder; wipe cases made with different plans. Returns a message when it wiped."""
    return folder.prepare(_made_with(plans, config), cases)


def preprocess_configuration(raw_dir: Path, out: PreprocessedFolder, plans: Plans, config: Configuration,
                             dataset: DatasetJson, num_processes: int) -> tuple[int, int, str | None]:
    """Returns (cases processed now, cases already done, message when old cases were wiped)."""
    folder = out.configuration(config.data_identifier, config.name)
    images = list_image_cases(raw_dir / "imagesTr", dataset.file_ending)
    labels = list_label_cases(raw_dir / "labelsTr", dataset.file_ending)
    cases = sorted(labels)
    wiped = prepare_config_folder(folder, plans, config, cases)
    todo = [c for c in cases if not folder.is_done(c)]
    jobs = [(c, [images[c][k] for k in sorted(images[c])], labels[c], plans, config, dataset, folder)
            for c in todo]
    run_parallel(_preprocess_one, jobs, num_processes, desc=f"preprocess {config.name}")
    return len(todo), len(cases) - len(todo), wiped


def copy_gt_segmentations(raw_dir: Path, out: PreprocessedFolder, dataset: DatasetJson) -> None:
    out.gt_dir.mkdir(parents=True, exist_ok=True)
    for case, src in list_label_cases(raw_dir / "labelsTr", dataset.file_ending).items():
        target = out.gt_dir / src.name
        if not target.is_file():
            with atomic_path(target) as tmp:
                shutil.copyfile(src, tmp)
