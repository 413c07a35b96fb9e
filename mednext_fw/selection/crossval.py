"""The cross-validation results of trained models, checked and gathered into one folder each.

A fold's validated cases are the ones its ``validation/summary.json`` lists (what the fold really
validated, even if ``splits_final.json`` changed since). A model's case set is the union over the
requested folds; models whose case sets differ cannot be compared and are refused.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mednext_fw.errors import UserError
from mednext_fw.io.atomic import atomic_path

CONFIG_ORDER = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")


class SelectionError(UserError, ValueError):
    """The trained models cannot be compared as asked (missing folds, predictions, probabilities)."""


@dataclass(frozen=True)
class TrainedModel:
    trainer: str  # the model folder's trainer part, e.g. MedNeXtTrainer
    config: str
    folder: Path

    @property
    def name(self) -> str:
        return f"{self.trainer}__{self.config}"


def _listing(items: Sequence[str], limit: int = 6) -> str:
    items = list(items)
    return ", ".join(items[:limit]) + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def find_models(results_dir: Path, trainers: Sequence[str], configs: Sequence[str] | None,
                planned: Sequence[str]) -> list[TrainedModel]:
    """Explicit ``configs`` must all be trained; by default every planned configuration that is."""
    explicit = configs is not None
    wanted = list(configs) if explicit else sorted(planned, key=lambda c: (CONFIG_ORDER + (c,)).index(c))
    models, missing = [], []
    for trainer in trainers:
        for config in wanted:
            folder = results_dir / f"{trainer}__{config}"
            if folder.is_dir():
                models.append(TrainedModel(trainer, config, folder))
            elif explicit:
                missing.append(folder.name)
    if missing:
        raise SelectionError(f"{results_dir}: no trained model {_listing(missing)} (train it with "
                             f"mednext_train CONFIG FOLD -tr TRAINER, or leave it out of -c/-tr)")
    if not models:
        raise SelectionError(f"{results_dir}: none of the configurations {_listing(wanted)} is trained for "
                             f"trainer(s) {_listing(trainers)}")
    return models


def fold_cases(model: TrainedModel, fold: str) -> list[str]:
    """The cases fold ``fold`` validated, from its ``validation/summary.json``."""
    summary = model.folder / f"fold_{fold}" / "validation" / "summary.json"
    try:
        per_case = json.loads(summary.read_text())["metric_per_case"]
        return sorted(str(c["case"]) for c in per_case)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SelectionError(f"{summary}: final validation missing or unreadable ({exc.__class__.__name__}); "
                             f"run mednext_train {model.config} {fold} -tr {model.trainer} --continue") from None


def check_folds(model: TrainedModel, folds: Sequence[str]) -> None:
    missing = [f"fold_{f}" for f in folds if not (model.folder / f"fold_{f}" / "checkpoint_final.pth").is_file()]
    if missing:
        raise SelectionError(f"{model.folder}: {_listing(missing)} not trained (no checkpoint_final.pth); run "
                             f"mednext_train {model.config} FOLD -tr {model.trainer} for each, or choose folds with -f")


def _link_or_copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(src, tmp)


def gather_crossval(model: TrainedModel, folds: Sequence[str], file_ending: str,
                    need_probabilities: bool) -> tuple[Path, list[str]]:
    """Collect every fold's validation predictions (and ``.npz`` probabilities when needed) into
    ``<model>/crossval_results_folds_<folds>/``; returns the folder and its sorted cases."""
    check_folds(model, folds)
    members: dict[str, Path] = {}
    missing_pred, missing_prob = [], []
    for fold in folds:
        val = model.folder / f"fold_{fold}" / "validation"
        for case in fold_cases(model, fold):
            if case in members:
                raise SelectionError(f"{model.folder}: case {case} was validated by {members[case].parent.parent.name}"
                                     f" and fold_{fold}; the folds overlap")
            members[case] = val
            if not (val / f"{case}{file_ending}").is_file():
                missing_pred.append(str(val / f"{case}{file_ending}"))
            if need_probabilities and not (val / f"{case}.npz").is_file():
                missing_prob.append(str(val / f"{case}.npz"))
    if missing_pred:
        raise SelectionError(f"{model.name}: validation predictions missing: {_listing(missing_pred)}; re-run "
                             f"mednext_train {model.config} FOLD -tr {model.trainer} --continue")
    if missing_prob:
        raise SelectionError(f"{model.name}: validation probabilities missing for ensembling: "
                             f"{_listing(missing_prob)}; re-run mednext_train {model.config} FOLD -tr "
                             f"{model.trainer} --continue --npz, or pass --disable-ensembling")
    out = model.folder / f"crossval_results_folds_{'_'.join(folds)}"
    if out.is_dir():  # earlier gathers may hold cases of other trainings
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for case, val in sorted(members.items()):
        _link_or_copy(val / f"{case}{file_ending}", out / f"{case}{file_ending}")
        if need_probabilities:
            _link_or_copy(val / f"{case}.npz", out / f"{case}.npz")
    shutil.copyfile(model.folder / "dataset.json", out / "dataset.json")
    return out, sorted(members)


def check_same_cases(gathered: dict[TrainedModel, list[str]]) -> list[str]:
    models = list(gathered)
    first = set(gathered[models[0]])
    for m in models[1:]:
        other = set(gathered[m])
        if other != first:
            raise SelectionError(
                f"{models[0].name} and {m.name} were cross-validated on different cases (only in the first: "
                f"{_listing(sorted(first - other)) or 'none'}; only in the second: "
                f"{_listing(sorted(other - first)) or 'none'}); train them on the same splits_final.json and folds")
    return sorted(first)
