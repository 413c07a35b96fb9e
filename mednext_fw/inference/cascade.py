"""The cascade's second stage: the previous stage's prediction as one-hot input channels.

Training and prediction build those channels the same way: the previous stage's label map in the
image's native geometry (a cross-validation prediction when training, a fresh prediction when
predicting) goes through the geometric half of this stage's preprocessing (transpose, the case's
crop box, resampling of labels to the preprocessed shape) and becomes one channel per foreground
label. ``mednext_predict -c 3d_cascade_fullres`` runs both stages itself.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from mednext_fw.inference.model_folder import ModelFolder, ModelFolderError, load_networks
from mednext_fw.inference.predictor import Predictor
from mednext_fw.io.image_io import ImageProperties
from mednext_fw.planners.plans import Configuration, Plans
from mednext_fw.preprocessing.case_properties import CaseProperties
from mednext_fw.preprocessing.resampling import resample_data


def native_to_preprocessed(seg: np.ndarray, plans: Plans, config: Configuration, props: CaseProperties,
                           shape: Sequence[int]) -> np.ndarray:
    """Native ``(Z, Y, X)`` label map (file array order) -> int16 labels on this configuration's
    preprocessed grid ``shape`` of the case described by ``props``."""
    seg = np.asarray(seg).transpose(plans.transpose_forward)
    seg = seg[tuple(slice(int(a), int(b)) for a, b in props.bbox)]
    out = resample_data(seg[None], list(shape), props.spacing, config.spacing, order=1, is_seg=True,
                        anisotropy_threshold=config.anisotropy_threshold, order_z=0)[0]
    return np.ascontiguousarray(out, dtype=np.int16)


def one_hot(seg: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """``(*S)`` labels -> ``(len(labels), *S)`` float32; anything else (background, -1) is all zeros."""
    return np.stack([seg == v for v in labels]).astype(np.float32)


# what ``mednext_train -m B -k 5`` appends to the trainer in a model folder's name
_VARIANT_SUFFIX = re.compile(r"_[SBML]_kernel\d+$")


def previous_stage_path(model_dir: Path, previous: str) -> Path:
    """The previous stage's model folder beside ``model_dir`` (trained or not), one rule for training and
    prediction: the same trainer and variant (``T_B_kernel5__3d_lowres`` for ``T_B_kernel5__3d_cascade_fullres``)
    when that was trained, else the trainer with its planned network (``T__3d_lowres``)."""
    trainer = model_dir.name.split("__")[0]
    same = model_dir.parent / f"{trainer}__{previous}"
    return same if same.is_dir() else model_dir.parent / f"{_VARIANT_SUFFIX.sub('', trainer)}__{previous}"


def previous_stage_folder(folder: ModelFolder, previous: str) -> Path:
    """The previous stage's trained model folder (:func:`previous_stage_path`); an error naming it if absent."""
    path = previous_stage_path(folder.path, previous)
    if not path.is_dir():
        raise ModelFolderError(f"{folder.path} is a cascade stage after '{previous}', but {path} does not exist; "
                               f"train {previous} first (mednext_train {previous} FOLD -tr {folder.trainer_name})")
    return path


class CascadePredictor(Predictor):
    """Predicts the previous stage first (label map in native geometry, no postprocessing) and
    feeds it, one-hot on this stage's grid, as extra input channels."""

    def __init__(self, networks, plans: Plans, config: Configuration | str, dataset, previous: Predictor, **kwargs):
        super().__init__(networks, plans, config, dataset, **kwargs)
        self.previous = previous
        self.labels = list(dataset.foreground_labels)

    @classmethod
    def from_folders(cls, folder: ModelFolder, folds, checkpoint: str, device, tta: bool, step_size: float,
                     **kwargs) -> "CascadePredictor":
        config = folder.plans.configuration(folder.config_name)
        prev_folder = ModelFolder.open(previous_stage_folder(folder, config.previous_stage))
        # the same folds as this stage where the previous stage has them all, else every fold it has
        have = {str(f) for f in prev_folder.folds(checkpoint)}
        prev_folds = folds if folds and {str(f) for f in folds} <= have else None
        previous = Predictor(load_networks(prev_folder, prev_folds, checkpoint), prev_folder.plans,
                             prev_folder.config_name, prev_folder.dataset, device, tta, step_size,
                             progress=kwargs.get("progress", False))
        return cls(load_networks(folder, folds, checkpoint), folder.plans, config, folder.dataset, previous,
                   device=device, tta=tta, step_size=step_size, **kwargs)

    def preprocess(self, data: np.ndarray, image_props: ImageProperties, case_id: str = "case"):
        pre, props = super().preprocess(data, image_props, case_id)
        low, low_props = self.previous.preprocess(data, image_props, case_id)
        low_seg = self.previous.predict_preprocessed(low, low_props, apply_postprocessing=False)
        prev = native_to_preprocessed(low_seg, self.plans, self.config, props, pre.shape[1:])
        return np.concatenate([pre, one_hot(prev, self.labels)]), props
