"""Classify 2D images with trained classification models and write a CSV.

Every image goes through :func:`mednext_fw.preprocessing.classification.load_prepared`, the same
resize + normalisation the training cache used; the folds' softmax probabilities are averaged.
CSV columns: ``file, class, prob_<class name>...`` (plus ``true_class`` when labels are known).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mednext_fw.errors import UserError
from mednext_fw.io.atomic import atomic_path
from mednext_fw.io.image_io import NATURAL_2D_ENDINGS, SITK_ENDINGS, file_ending_of
from mednext_fw.planners.plans import Configuration
from mednext_fw.preprocessing.classification import load_prepared


class ClassificationInputError(UserError, ValueError):
    pass


class ClassificationPredictor:
    def __init__(self, networks: Sequence[nn.Module], config: Configuration, class_names: Sequence[str],
                 device: torch.device | str = "cpu"):
        if not networks:
            raise ValueError("no networks given")
        self.device = torch.device(device)
        self.networks = [n.to(self.device).eval() for n in networks]
        self.config = config
        self.class_names = list(class_names)

    @classmethod
    def from_model_folder(cls, folder, folds: Sequence[int | str] | None = None, checkpoint: str = "final",
                          device: str = "auto") -> "ClassificationPredictor":
        """``folder``: a :class:`mednext_fw.inference.model_folder.ModelFolder` or its path."""
        from mednext_fw.inference.model_folder import ModelFolder, load_networks
        from mednext_fw.devices import select_device

        if not isinstance(folder, ModelFolder):
            folder = ModelFolder.open(folder)
        config = folder.plans.configuration(folder.config_name)
        if config.task != "classification":
            raise ClassificationInputError(f"{folder.path}: configuration '{config.name}' is not a classifier")
        return cls(load_networks(folder, folds, checkpoint), config, config.extra["class_names"],
                   select_device(device))

    @torch.no_grad()
    def predict_arrays(self, images: np.ndarray, batch_size: int = 32, progress: bool = False,
                       indices: Sequence[int] | None = None) -> np.ndarray:
        """Preprocessed ``(N, C, S, S)`` images (or the rows ``indices`` of a memory-mapped cache, read one
        batch at a time) -> ``(N, K)`` probabilities, the mean over the networks."""
        rows = np.arange(len(images)) if indices is None else np.asarray(indices)
        out = np.zeros((len(rows), len(self.class_names)), dtype=np.float64)
        starts = range(0, len(rows), max(1, batch_size))
        for s in tqdm(starts, desc="classifying", disable=not progress):
            batch = images[rows[s:s + batch_size]]
            x = torch.from_numpy(np.array(batch, dtype=np.float32)).to(self.device)  # a copy: memmaps are read-only
            for net in self.networks:
                out[s:s + len(x)] += torch.softmax(net(x).float(), dim=1).cpu().numpy()
        return out / len(self.networks)

    def predict_files(self, files: Sequence[str | Path], batch_size: int = 32, progress: bool = True) -> np.ndarray:
        probs = []
        chunks = range(0, len(files), max(1, batch_size))
        for s in tqdm(chunks, desc="classifying", disable=not progress):
            batch = np.stack([load_prepared(f, self.config) for f in files[s:s + batch_size]])
            probs.append(self.predict_arrays(batch, batch_size))
        return np.concatenate(probs) if probs else np.zeros((0, len(self.class_names)))


def collect_images(inputs: Sequence[str | Path]) -> tuple[list[Path], Path | None]:
    """Image files from files and/or folders (searched recursively) and the folder names are relative to."""
    files: list[Path] = []
    base = None
    for item in map(Path, inputs):
        if item.is_dir():
            base = item if base is None else base
            files += sorted(p for p in item.rglob("*") if p.is_file() and not p.name.startswith(".")
                            and file_ending_of(p) in NATURAL_2D_ENDINGS + SITK_ENDINGS)
        elif item.is_file():
            files.append(item)
        else:
            raise ClassificationInputError(f"{item}: no such file or folder")
    if not files:
        raise ClassificationInputError(f"{', '.join(map(str, inputs))}: no image files found "
                                       f"({', '.join(NATURAL_2D_ENDINGS + SITK_ENDINGS)})")
    return files, base if len(inputs) == 1 else None


def write_predictions_csv(path: str | Path, names: Sequence[str], probs: np.ndarray, class_names: Sequence[str],
                          true_labels: Sequence[int] | None = None) -> Path:
    path = Path(path)
    header = ["file", "class"] + (["true_class"] if true_labels is not None else []) + \
        [f"prob_{c}" for c in class_names]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for i, name in enumerate(names):
                row = [name, class_names[int(probs[i].argmax())]]
                if true_labels is not None:
                    row.append(class_names[int(true_labels[i])])
                w.writerow(row + [f"{p:.6f}" for p in probs[i]])
    return path


def predict_to_csv(model_folder, inputs: Sequence[str | Path], output: str | Path,
                   folds: Sequence[int | str] | None = None, checkpoint: str = "final", device: str = "auto",
                   batch_size: int = 32, progress: bool = True, backend: str = "torch",
                   part: tuple[int, int] = (1, 0)) -> Path:
    """Classify every image in ``inputs``; ``output`` is a .csv file or a folder (-> predictions.csv).

    ``backend``: where the networks' forward runs (see ``inference.backends``). ``part`` = (N, K): only
    part K of N of the images, written to ``predictions_part<K>of<N>.csv`` so parts never collide.
    """
    from mednext_fw.inference.backends import wrap_networks
    from mednext_fw.inference.parts import select_part

    output = Path(output)
    target = output if output.suffix.lower() == ".csv" else output / "predictions.csv"
    if part[0] > 1:
        target = target.with_name(f"{target.stem}_part{part[1]}of{part[0]}.csv")
    predictor = ClassificationPredictor.from_model_folder(model_folder, folds, checkpoint, device)
    predictor.networks = wrap_networks(predictor.networks, backend, predictor.device)
    files, base = collect_images(inputs)
    if part[0] > 1:
        files = select_part(files, *part)
    probs = predictor.predict_files(files, batch_size, progress)
    names = [f.relative_to(base).as_posix() if base is not None else str(f) for f in files]
    return write_predictions_csv(target, names, probs, predictor.class_names)
