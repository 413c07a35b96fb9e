"""Predict a folder of images with a trained segmentation model: what ``mednext_predict`` and the demo run.

Inputs are grouped into cases and checked before anything is predicted; the networks' forward runs on
the chosen backend; cases whose outputs exist are skipped, so an interrupted run resumes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from mednext_fw.inference.backends import OPENVINO_SPEEDUP, choose_auto, resolve_backend, wrap_networks
from mednext_fw.inference.inputs import check_inputs, collect_cases
from mednext_fw.inference.model_folder import ModelFolder
from mednext_fw.inference.parts import select_part
from mednext_fw.inference.predictor import Predictor
from mednext_fw.io.image_io import file_ending_of


# Timing a tile costs a pass: a job of this many passes or fewer is announced without a time.
TIME_ABOVE_PASSES = 2


@dataclass
class PredictOptions:
    folds: Sequence[str] | None = None  # None: every fold with the checkpoint, else 'all'
    checkpoint: str = "final"
    device: str = "auto"
    tta: bool = True
    step_size: float = 0.5
    backend: str = "auto"  # auto: OpenVINO for big MedNeXt jobs on a CPU, else torch (inference/backends)
    postprocessing: bool = True  # apply the model's postprocessing.json when it has one
    overwrite: bool = False
    save_probabilities: bool = False
    num_export_workers: int = 2
    num_parts: int = 1  # predict part ``part_id`` of ``num_parts`` (cases by name, round-robin)
    part_id: int = 0


def predict_folder(folder: ModelFolder, input_dir: Path, output_dir: Path, opts: PredictOptions | None = None,
                   announce: Callable[[str], None] = print) -> list[Path]:
    """Predict every case of ``input_dir`` (this part of it) into ``output_dir``; returns the outputs."""
    opts = opts or PredictOptions()
    cases = collect_cases(input_dir, folder.dataset)
    if opts.num_parts > 1:
        cases = {case: cases[case] for case in select_part(cases, opts.num_parts, opts.part_id)}
    check_inputs(cases, folder.plans.configuration(folder.config_name).dim)
    predictor = Predictor.from_model_folder(folder, opts.folds, opts.checkpoint, opts.device, tta=opts.tta,
                                            step_size=opts.step_size, progress=False)
    if not opts.postprocessing:
        predictor.postprocessing = None
    todo = {c: f for c, f in cases.items()
            if opts.overwrite or not (output_dir / f"{c}{file_ending_of(f[0])}").is_file()}
    resolve_backend(opts.backend, predictor.device)  # refuse a bad or missing backend before any pass runs
    backend = opts.backend
    if todo:  # the estimate times a torch pass, which is also what auto weighs a runtime against
        estimate = predictor.estimate_files(todo, time_above_passes=TIME_ABOVE_PASSES)
        if backend == "auto":
            backend = choose_auto(predictor.networks, predictor.device, estimate.forward_passes,
                                  estimate.tile_seconds)
        if backend == "openvino" and estimate.tile_seconds is not None:
            estimate = replace(estimate, tile_seconds=estimate.tile_seconds / OPENVINO_SPEEDUP)
        announce(f"estimated {estimate.describe()} (forward on {backend})")
    predictor.networks = wrap_networks(predictor.networks, backend, predictor.device)
    return predictor.predict_files(cases, output_dir, overwrite=opts.overwrite,
                                   save_probabilities=opts.save_probabilities,
                                   num_export_workers=opts.num_export_workers)
