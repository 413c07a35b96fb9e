"""Pick the best configuration or ensemble on the cross-validation, the way nnU-Net does.

Every trained model and every ensemble of two or more of them (probability average) is scored
with the evaluation module on the same cross-validation cases; the highest foreground mean Dice
wins (a tie keeps the one with fewer members). Postprocessing is decided on the winner's
cross-validation predictions. Written to ``$MEDNEXT_results/<dataset>/``:
``inference_information.json`` (every score, the choice, the postprocessing) and
``inference_instructions.txt`` (the commands, see ``instructions``).
"""
from __future__ import annotations

import math
from dataclasses import asdict
from itertools import combinations
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from mednext_fw import paths
from mednext_fw.evaluation import evaluate_folders
from mednext_fw.inference.ensemble import ensemble_folders
from mednext_fw.inference.postprocessing import POSTPROCESSING_FILE, determine_postprocessing
from mednext_fw.io.atomic import atomic_path, write_json_atomic
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.lookup import find_dataset
from mednext_fw.planners.plans import Plans
from mednext_fw.selection.crossval import SelectionError, TrainedModel, check_same_cases, find_models, gather_crossval
from mednext_fw.selection.instructions import instructions_text

DEFAULT_FOLDS = ("0", "1", "2", "3", "4")
INFORMATION_FILE = "inference_information.json"
INSTRUCTIONS_FILE = "inference_instructions.txt"


def _score(summary: dict[str, Any], metric: str) -> float:
    value = summary["foreground_mean"].get(metric, float("nan"))
    return float(value)


def _candidate(name: str, members: Sequence[TrainedModel], folder: Path, summary: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "members": [{"trainer": m.trainer, "configuration": m.config, "model_folder": str(m.folder)}
                                      for m in members],
            "crossval_folder": str(folder), "summary_file": str(folder / "summary.json"),
            "Dice": _score(summary, "Dice"), "NSD": _score(summary, "NSD")}


def _rank_key(c: dict[str, Any]) -> tuple[float, int]:
    dice = c["Dice"] if not math.isnan(c["Dice"]) else -math.inf
    return dice, -len(c["members"])


def find_best_configuration(dataset: str, configs: Sequence[str] | None = None,
                            trainers: Sequence[str] = ("MedNeXtTrainer",), folds: Sequence[str | int] = DEFAULT_FOLDS,
                            ensembling: bool = True, num_processes: int | None = None) -> dict[str, Any]:
    name = find_dataset(dataset, [paths.results_root(), paths.preprocessed_root()])
    pre_dir, results_dir = paths.preprocessed_root() / name, paths.results_root() / name
    gt_dir = pre_dir / "gt_segmentations"
    if not gt_dir.is_dir():
        raise SelectionError(f"{gt_dir}: reference segmentations not found (run mednext_plan_and_preprocess -d {name})")
    ds = DatasetJson.load(pre_dir / "dataset.json")
    planned = [k for k, c in Plans.load(pre_dir / "plans.json").configurations.items() if c.task == "segmentation"]
    folds = [str(f) for f in folds]
    models = find_models(results_dir, trainers, configs, planned)
    ensembling = ensembling and len(models) > 1
    gathered = {m: gather_crossval(m, folds, ds.file_ending, ensembling) for m in models}
    cases = check_same_cases({m: c for m, (_, c) in gathered.items()})

    def evaluate(folder: Path) -> dict[str, Any]:
        return evaluate_folders(gt_dir, folder, ds.foreground_regions, ds.file_ending, ignore_label=ds.ignore_label,
                                output_json=folder / "summary.json", case_ids=cases, num_processes=num_processes)

    candidates = [_candidate(m.name, [m], folder, evaluate(folder)) for m, (folder, _) in gathered.items()]
    if ensembling:
        combos = [c for r in range(2, len(models) + 1) for c in combinations(models, r)]
        for combo in tqdm(combos, desc="ensembles", unit="ensemble"):
            label = "ensemble___" + "___".join(m.name for m in combo)
            out = results_dir / "ensembles" / f"{label}___folds_{'_'.join(folds)}"
            ensemble_folders([gathered[m][0] for m in combo], out, ds, overwrite=True, progress=False)
            candidates.append(_candidate(label, combo, out, evaluate(out)))
    best = dict(max(candidates, key=_rank_key))
    best_folder = Path(best["crossval_folder"])
    rules = determine_postprocessing(gt_dir, best_folder, ds, best_folder / POSTPROCESSING_FILE)
    ds.save(best_folder / "dataset.json")  # mednext_apply_postprocessing reads it next to the rules
    after = [v for v in rules.dice_after.values() if not math.isnan(v)]
    best.update(postprocessing_file=str(best_folder / POSTPROCESSING_FILE), postprocessing=asdict(rules),
                Dice_postprocessed=float(sum(after) / len(after)) if after else float("nan"))
    info = {"dataset": name, "folds": folds, "cases": cases, "metric": "foreground mean Dice",
            "ensembling": ensembling, "candidates": candidates, "best": best,
            "instructions_file": str(results_dir / INSTRUCTIONS_FILE)}
    write_json_atomic(info, results_dir / INFORMATION_FILE)
    with atomic_path(results_dir / INSTRUCTIONS_FILE) as tmp:
        tmp.write_text(instructions_text(info))
    return info
