"""Keep-largest-connected-component postprocessing, decided on cross-validation results.

Two greedy steps over the validation predictions, as nnU-Net does it:
1. keep only the largest component of the whole foreground; accepted when the mean foreground Dice
   rises and no class gets worse;
2. then, per class (label or region), keep only its largest component; accepted when that class's
   Dice rises.
The accepted rules go to ``postprocessing.json`` in the model folder; prediction applies them.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from mednext_fw.errors import UserError
from mednext_fw.io.atomic import write_json_atomic
from mednext_fw.io.cases import list_label_cases
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import read_seg, write_seg

POSTPROCESSING_FILE = "postprocessing.json"


class PostprocessingError(UserError, ValueError):
    """A missing or unreadable rules file, input folder or reference: reported in one line."""


@dataclass
class PostprocessingRules:
    largest_foreground_component: bool = False
    largest_component_per_class: list[list[int]] = field(default_factory=list)  # label sets (regions)
    dice_before: dict[str, float] = field(default_factory=dict)
    dice_after: dict[str, float] = field(default_factory=dict)

    def is_identity(self) -> bool:
        return not self.largest_foreground_component and not self.largest_component_per_class

    def save(self, path: str | Path) -> None:
        write_json_atomic(asdict(self), path)

    @classmethod
    def load(cls, path: str | Path) -> "PostprocessingRules":
        path = Path(path)
        if not path.is_file():
            raise PostprocessingError(f"{path}: postprocessing file not found")
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise PostprocessingError(f"{path}: not a postprocessing file ({exc})") from exc


def keep_largest_component(seg: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Voxels carrying any of ``labels`` outside their largest connected component become 0."""
    mask = np.isin(seg, list(labels))
    comp, n = ndimage.label(mask)
    if n <= 1:
        return seg
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    out = seg.copy()
    out[mask & (comp != sizes.argmax())] = 0
    return out


def apply_postprocessing(seg: np.ndarray, rules: PostprocessingRules, dataset: DatasetJson) -> np.ndarray:
    if rules.largest_foreground_component:
        seg = keep_largest_component(seg, dataset.foreground_labels)
    for labels in rules.largest_component_per_class:
        seg = keep_largest_component(seg, labels)
    return seg


def _dice(ref: np.ndarray, pred: np.ndarray) -> float:
    tp = np.count_nonzero(ref & pred)
    denom = np.count_nonzero(ref) + np.count_nonzero(pred)
    return float("nan") if denom == 0 else 2.0 * tp / denom


def _class_dice(refs: list[np.ndarray], preds: list[np.ndarray], classes: list[tuple[int, ...]]) -> dict[str, float]:
    """Mean Dice over cases per class (cases where both are empty are skipped)."""
    out = {}
    for cls in classes:
        vals = [_dice(np.isin(r, cls), np.isin(p, cls)) for r, p in zip(refs, preds)]
        vals = [v for v in vals if not np.isnan(v)]
        out[",".join(map(str, cls))] = float(np.mean(vals)) if vals else float("nan")
    return out


def _fg_mean(d: dict[str, float]) -> float:
    vals = [v for v in d.values() if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _load_pairs(ref_dir: Path, pred_dirs: Sequence[Path], dataset: DatasetJson):
    refs = list_label_cases(ref_dir, dataset.file_ending)
    preds = {}
    for d in pred_dirs:
        preds.update(list_label_cases(d, dataset.file_ending))
    common = sorted(set(refs) & set(preds))
    if not common:
        raise PostprocessingError(f"no prediction in {[str(d) for d in pred_dirs]} has a reference in {ref_dir}")
    ref_arrays, pred_arrays = [], []
    for case in tqdm(common, desc="reading validation cases", leave=False):
        ref_arrays.append(read_seg(refs[case])[0][0])
        pred_arrays.append(read_seg(preds[case])[0][0])
        if ref_arrays[-1].shape != pred_arrays[-1].shape:
            raise PostprocessingError(f"{preds[case]}: shape {pred_arrays[-1].shape} differs from {refs[case]}")
    return ref_arrays, pred_arrays


def determine_postprocessing(ref_dir: str | Path, pred_dir: str | Path | Sequence[str | Path], dataset: DatasetJson,
                             output_file: str | Path | None = None) -> PostprocessingRules:
    """Decide the rules on validation predictions (one folder or one per fold) against references;
    write them to ``output_file`` (e.g. ``<model folder>/postprocessing.json``) when given."""
    pred_dirs = [Path(pred_dir)] if isinstance(pred_dir, (str, Path)) else [Path(p) for p in pred_dir]
    refs, preds = _load_pairs(Path(ref_dir), pred_dirs, dataset)
    classes = [tuple(r) for r in dataset.foreground_regions] if dataset.has_regions \
        else [(v,) for v in dataset.foreground_labels]
    base = _class_dice(refs, preds, classes)
    rules = PostprocessingRules(dice_before=base)
    current, cur_dice = preds, base
    if len(classes) > 0:
        trial = [keep_largest_component(p, dataset.foreground_labels) for p in preds]
        trial_dice = _class_dice(refs, trial, classes)
        no_worse = all(np.isnan(base[k]) or trial_dice[k] >= base[k] for k in base)
        if no_worse and _fg_mean(trial_dice) > _fg_mean(base):
            rules.largest_foreground_component = True
            current, cur_dice = trial, trial_dice
    for cls in classes:
        key = ",".join(map(str, cls))
        trial = [keep_largest_component(p, cls) for p in current]
        trial_dice = _class_dice(refs, trial, [cls])
        if not np.isnan(trial_dice[key]) and trial_dice[key] > cur_dice[key]:
            rules.largest_component_per_class.append(list(cls))
            current = trial
            cur_dice = {**cur_dice, key: trial_dice[key]}
    rules.dice_after = cur_dice
    if output_file is not None:
        rules.save(output_file)
    return rules


def postprocess_folder(input_dir: str | Path, output_dir: str | Path, rules: PostprocessingRules,
                       dataset: DatasetJson, overwrite: bool = False) -> list[Path]:
    """Apply ``rules`` to every label map in ``input_dir``; each output keeps its input's geometry.

    Atomic per file; existing outputs are skipped unless ``overwrite``, so a re-run resumes.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise PostprocessingError(f"{input_dir}: input folder not found")
    if input_dir.resolve() == output_dir.resolve():
        raise PostprocessingError(f"-o {output_dir} must differ from -i (the raw predictions would be overwritten)")
    cases = list_label_cases(input_dir, dataset.file_ending)
    if not cases:
        raise PostprocessingError(f"{input_dir}: no label maps ending in {dataset.file_ending}")
    output_dir.mkdir(parents=True, exist_ok=True)
    outputs = []
    for case, path in tqdm(sorted(cases.items()), desc="postprocessing", unit="case"):
        out = output_dir / path.name
        outputs.append(out)
        if out.is_file() and not overwrite:
            continue
        seg, props = read_seg(path)
        write_seg(apply_postprocessing(seg[0], rules, dataset), props, out)
    return outputs
