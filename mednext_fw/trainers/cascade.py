"""Training inputs of a cascade stage: every case's previous-stage cross-validation prediction.

Each case's previous-stage label map is the one written by the final validation of the previous
stage's fold that held the case out (``<Trainer>__3d_lowres/fold_k/validation/CASE<ending>``), so
the cascade learns from predictions as good as those it will see on new images. They are brought
onto this configuration's preprocessed grid once (``<model folder>/previous_stage/CASE.npy``,
refreshed when the previous stage's prediction is newer) and shared by the cascade's folds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from mednext_fw.inference.cascade import native_to_preprocessed, one_hot, previous_stage_path
from mednext_fw.io.atomic import save_npy_atomic
from mednext_fw.io.image_io import read_seg
from mednext_fw.trainers.experiment import Experiment
from mednext_fw.errors import UserError
from mednext_fw.planners.splits import read_splits


class CascadeInputError(UserError, ValueError):
    """The previous stage's cross-validation predictions a cascade trains on are missing."""


class CascadeInputs:
    def __init__(self, exp: Experiment):
        self.exp = exp
        self.previous = str(exp.config.previous_stage)
        self.labels = list(exp.dataset.foreground_labels)
        self.previous_model = previous_stage_path(exp.model_dir, self.previous)
        self.folder = exp.model_dir / "previous_stage"

    @property
    def num_channels(self) -> int:
        return len(self.labels)

    def sources(self, cases: Sequence[str]) -> dict[str, Path]:
        """Each case's previous-stage validation prediction; refuses, naming the folds, when any is missing."""
        splits = read_splits(self.exp.preprocessed_dir / "splits_final.json")
        fold_of = {c: k for k, s in enumerate(splits) for c in s["val"]}
        ending = self.exp.dataset.file_ending
        out, missing = {}, {}
        for case in cases:
            fold = fold_of.get(case)
            path = self.previous_model / f"fold_{fold}" / "validation" / f"{case}{ending}"
            if fold is None or not path.is_file():
                missing.setdefault("no fold validates it" if fold is None else f"fold_{fold}", []).append(case)
            out[case] = path
        if missing:
            what = "; ".join(f"{k} (cases {', '.join(v[:4])}{' ...' if len(v) > 4 else ''})" for k, v in missing.items())
            raise CascadeInputError(
                f"{self.exp.spec.configuration} trains on the {self.previous} cross-validation predictions of every "
                f"case, and {self.previous_model} lacks them for: {what}. Train those folds first "
                f"(mednext_train {self.previous} FOLD -tr {self.exp.spec.trainer_name}, every fold of "
                f"splits_final.json)")
        return out

    def prepare(self, cases: Sequence[str], log: Callable[[str], None] = print, progress: bool = True) -> None:
        """Write ``previous_stage/CASE.npy`` on the preprocessed grid for ``cases`` (resumable)."""
        todo = []
        for case, src in self.sources(cases).items():
            dst = self.folder / f"{case}.npy"
            if not dst.is_file() or dst.stat().st_mtime < src.stat().st_mtime:
                todo.append((case, src, dst))
        if todo:
            log(f"cascade: bringing {len(todo)} {self.previous} prediction(s) onto the {self.exp.config.name} grid")
        for case, src, dst in tqdm(todo, desc="previous stage", disable=not (progress and todo)):
            props = self.exp.cases.read_properties(case)
            shape = self.exp.cases.read_data(case).shape[1:]
            seg = native_to_preprocessed(read_seg(src)[0][0], self.exp.plans, self.exp.config, props, shape)
            save_npy_atomic(seg, dst)

    def with_previous(self, case: str, data: np.ndarray) -> np.ndarray:
        """Network input of ``case``: its image channels plus the one-hot previous-stage prediction."""
        prev = np.load(self.folder / f"{case}.npy")
        return np.concatenate([np.asarray(data, np.float32), one_hot(prev, self.labels)])
