"""Finding and reading trained model folders.

Layout (the trainer's contract): ``$MEDNEXT_results/Dataset<NNN>_<Name>/<Trainer>__<config>/`` with
``plans.json``, ``dataset.json`` and ``fold_<k>/checkpoint_{final,best,latest}.pth``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from torch import nn

from mednext_fw import paths
from mednext_fw.errors import UserError
from mednext_fw.io.atomic import is_temporary
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.lookup import find_dataset
from mednext_fw.network_architectures.checkpoint import CheckpointError, load_checkpoint, network_from_checkpoint
from mednext_fw.planners.plans import Plans

CHECKPOINTS = ("final", "best", "latest")
_FOLD_RE = re.compile(r"^fold_(\d+)$")
DEFAULT_TRAINER = "MedNeXtTrainer"
# Checkpoint reading (``load_checkpoint``, ``network_from_checkpoint``) is network_architectures.checkpoint's.
__all__ = ["ModelFolder", "ModelFolderError", "CheckpointError", "load_checkpoint", "network_from_checkpoint",
           "candidate_model_folders", "resolve_model_folder", "load_networks"]


class ModelFolderError(UserError, ValueError):
    """The requested trained model does not exist or is incomplete."""


@dataclass
class ModelFolder:
    path: Path
    plans: Plans
    dataset: DatasetJson
    trainer_name: str
    config_name: str

    @classmethod
    def open(cls, path: str | Path) -> "ModelFolder":
        path = Path(path)
        if not path.is_dir():
            raise ModelFolderError(f"{path}: model folder not found")
        trainer, sep, config = path.name.partition("__")
        if not sep:
            raise ModelFolderError(f"{path}: a model folder is named '<Trainer>__<config>'")
        for name in ("plans.json", "dataset.json"):
            if not (path / name).is_file():
                raise ModelFolderError(f"{path}: {name} is missing; is the training complete?")
        return cls(path, Plans.load(path / "plans.json"), DatasetJson.load(path / "dataset.json"), trainer, config)

    def folds(self, checkpoint: str = "final") -> list[int]:
        """Cross-validation folds that hold the requested checkpoint, in ascending order."""
        out = []
        for p in self.path.iterdir():
            m = _FOLD_RE.match(p.name)
            if m and (p / f"checkpoint_{checkpoint}.pth").is_file():
                out.append(int(m.group(1)))
        return sorted(out)

    def default_folds(self, checkpoint: str = "final") -> list[int | str]:
        """What ``-f`` defaults to: the cross-validation folds holding the checkpoint, else ``all``.

        Like nnU-Net, the ensemble is the cross-validation models; a model trained on every case
        (``fold_all``, what the demo trains) is used when no cross-validation fold exists.
        """
        folds: list[int | str] = list(self.folds(checkpoint))
        if not folds and (self.path / "fold_all" / f"checkpoint_{checkpoint}.pth").is_file():
            folds = ["all"]
        return folds

    def checkpoint_path(self, fold: int | str, checkpoint: str = "final") -> Path:
        if checkpoint not in CHECKPOINTS:
            raise ModelFolderError(f"checkpoint must be one of {CHECKPOINTS}, got '{checkpoint}'")
        p = self.path / f"fold_{fold}" / f"checkpoint_{checkpoint}.pth"
        if not p.is_file():
            have = self.folds(checkpoint)
            raise ModelFolderError(f"{p}: not found (folds with checkpoint_{checkpoint}.pth: {have or 'none'})")
        return p


def candidate_model_folders(dataset: str | None = None, config: str | None = None,
                            trainer: str | None = None, checkpoint: str = "final") -> list[Path]:
    """Model folders under the results root matching the filters and holding a checkpoint."""
    root = paths.results_root()
    if dataset is not None:
        dataset_dirs = [root / find_dataset(dataset, [root])]
    else:
        dataset_dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("Dataset")) \
            if root.is_dir() else []
    out = []
    for ddir in dataset_dirs:
        for m in sorted(ddir.iterdir()):
            tr, sep, cfg = m.name.partition("__")
            if not sep or (config and cfg != config) or (trainer and tr != trainer):
                continue
            if any((f / f"checkpoint_{checkpoint}.pth").is_file() for f in m.glob("fold_*") if not is_temporary(f)):
                out.append(m)
    return out


def resolve_model_folder(dataset: str | None = None, config: str | None = None, trainer: str | None = None,
                         checkpoint: str = "final") -> Path:
    """The one trained model matching the filters; an error listing the choices otherwise."""
    found = candidate_model_folders(dataset, config, trainer, checkpoint)
    if len(found) == 1:
        return found[0]
    if trainer is None and len(found) > 1:  # prefer the default trainer when it disambiguates
        default = [f for f in found if f.name.startswith(DEFAULT_TRAINER + "__")]
        if len(default) == 1:
            return default[0]
    where = f"{paths.results_root()}"
    wanted = ", ".join(f"{k}={v}" for k, v in (("dataset", dataset), ("config", config), ("trainer", trainer)) if v)
    if not found:
        raise ModelFolderError(f"no trained model with checkpoint_{checkpoint}.pth in {where}"
                               + (f" matching {wanted}" if wanted else ""))
    listing = ", ".join(f"{f.parent.name}/{f.name}" for f in found)
    raise ModelFolderError(f"several trained models match ({listing}); choose with -d/-c/-tr")


def load_networks(folder: ModelFolder, folds: Sequence[int | str] | None, checkpoint: str = "final") -> list[nn.Module]:
    folds = list(folds) if folds else folder.default_folds(checkpoint)
    if not folds:
        raise ModelFolderError(f"{folder.path}: no fold holds checkpoint_{checkpoint}.pth "
                               "(looked for fold_0..fold_4 and fold_all)")
    nets = []
    for fold in folds:
        path = folder.checkpoint_path(fold, checkpoint)
        ckpt = load_checkpoint(path, require=("network_builder", "network_state"))
        nets.append(network_from_checkpoint(ckpt, str(path)))
    return nets
