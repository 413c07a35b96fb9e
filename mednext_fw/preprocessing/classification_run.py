"""Plan and preprocess one classification dataset: listing -> fingerprint -> plans -> cache -> splits.

The classification counterpart of :func:`mednext_fw.preprocessing.run.plan_and_preprocess`; each step
is a function of planners or preprocessing, wired here so the command and the demo call one function.
"""
from __future__ import annotations

from pathlib import Path

from mednext_fw import paths
from mednext_fw.io.atomic import write_json_atomic
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.planners.classification import (CONFIG_NAME, DEFAULT_MAX_INPUT, ClassificationDataError,
                                                image_fingerprint, list_images, plan_classification)
from mednext_fw.planners.classification_splits import make_splits
from mednext_fw.planners.plans import Plans
from mednext_fw.preprocessing.classification import preprocess_images


def plan_and_preprocess_classification(dataset_name: str, input_size: int | None = None,
                                       max_input_size: int | None = None, num_workers: int = 1,
                                       num_folds: int = 5, replan: bool = False, preprocess: bool = True,
                                       verbose: bool = True) -> Path:
    """Fingerprint, plan, cache and split one classification dataset; returns its preprocessed folder.

    An existing ``plans.json`` is kept (it may hold the user's edits) unless ``replan`` or an explicit
    ``input_size`` asks for a new plan; an existing ``splits_final.json`` is never overwritten.
    """
    raw_dir = paths.raw_root() / dataset_name
    out_dir = paths.preprocessed_root() / dataset_name
    dataset = DatasetJson.load(raw_dir / "dataset.json")
    if dataset.task != "classification":
        raise ClassificationDataError(f"{raw_dir / 'dataset.json'}: task is '{dataset.task}', not classification")
    items = list_images(raw_dir, dataset)
    fingerprint = image_fingerprint(items, dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(fingerprint, out_dir / "fingerprint.json")
    dataset.save(out_dir / "dataset.json")
    plans_file = out_dir / "plans.json"
    if plans_file.is_file() and not replan and input_size is None and max_input_size is None:
        plans = Plans.load(plans_file)
    else:
        plans = plan_classification(dataset_name, dataset, fingerprint, num_folds, input_size,
                                    max_input_size or DEFAULT_MAX_INPUT)
        plans.save(plans_file)
    config = plans.configuration(CONFIG_NAME)
    if verbose:
        print("\n".join(plans.planner_notes))
    if preprocess:
        preprocess_images(items, config, out_dir / config.data_identifier, num_workers=num_workers, verbose=verbose)
    splits_file = out_dir / "splits_final.json"
    if not splits_file.is_file():
        splits, rule = make_splits(items, num_folds, explicit_regex="case_id_regex" in dataset.extra)
        write_json_atomic(splits, splits_file)
        if verbose:
            print(f"{num_folds} folds split by {rule} -> {splits_file}")
    return out_dir
