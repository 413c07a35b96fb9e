"""Resize + normalise classification images into one memory-mappable array per configuration.

Output in ``$MEDNEXT_preprocessed/Dataset<ID>_<Name>/<data_identifier>/``: ``imagesTr.npy`` (float32,
``(N, C, S, S)``) and ``imagesTr.json`` (the index: image ids, labels, case ids, source files and the
settings that produced the array). :func:`prepare_image` is the one function used by both this cache
and inference, so a predicted image sees exactly the training preprocessing.
"""
from __future__ import annotations

import json
import os
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mednext_fw.io.atomic import atomic_path, write_json_atomic
from mednext_fw.io.image_io import NATURAL_2D_ENDINGS, ImageReadError, file_ending_of, read_image
from mednext_fw.planners.classification import ClassificationDataError, ImageItem
from mednext_fw.planners.plans import Configuration

_GREY_8BIT = ("L", "P", "LA", "1")


def read_classification_image(path: str | Path, num_channels: int) -> np.ndarray:
    """One image file -> ``(C, H, W)`` array in its own value range (uint8 stays uint8 values)."""
    path = Path(path)
    if file_ending_of(path) in NATURAL_2D_ENDINGS:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                if num_channels == 3:
                    im = im.convert("RGB")
                elif im.mode in _GREY_8BIT or im.mode in ("RGB", "RGBA", "CMYK", "YCbCr"):
                    im = im.convert("L")
                arr = np.asarray(im)
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ImageReadError(f"{path}: cannot be read as an image ({exc})") from exc
        arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    else:
        data, props = read_image(path)
        if not props.is_2d:
            raise ImageReadError(f"{path}: classification needs 2D images, got shape {data.shape[1:]}")
        arr = data[:, 0]
    if arr.shape[0] == 1 and num_channels == 3:
        arr = np.repeat(arr, 3, 0)
    if arr.shape[0] != num_channels:
        raise ImageReadError(f"{path}: has {arr.shape[0]} channel(s), the plans expect {num_channels}")
    return arr


def _pad_square(x: torch.Tensor) -> torch.Tensor:
    """Centre the image on a square canvas filled with each channel's minimum (its background)."""
    c, h, w = x.shape
    side = max(h, w)
    if h == w:
        return x
    canvas = x.amin(dim=(1, 2), keepdim=True).expand(c, side, side).clone()
    top, left = (side - h) // 2, (side - w) // 2
    canvas[:, top:top + h, left:left + w] = x
    return canvas


def prepare_image(arr: np.ndarray, config: Configuration) -> np.ndarray:
    """``(C, H, W)`` raw image -> ``(C, S, S)`` float32, resized then normalised as the plans say."""
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if config.extra.get("resize", "pad") == "pad":
        x = _pad_square(x)
    size = [int(s) for s in config.patch_size]
    if list(x.shape[1:]) != size:
        lo, hi = x.amin(dim=(1, 2), keepdim=True), x.amax(dim=(1, 2), keepdim=True)
        x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
        x = torch.maximum(torch.minimum(x, hi), lo)  # antialiasing rounds past the input range
    out = x.numpy()
    for c, scheme in enumerate(config.normalization):
        if scheme == "rgb_0_1":
            out[c] = out[c] / 255.0
        elif scheme == "zscore":
            out[c] = (out[c] - out[c].mean()) / max(float(out[c].std()), 1e-8)
        elif scheme != "none":
            raise ClassificationDataError(f"normalisation '{scheme}' is not defined for classification "
                                          "(use rgb_0_1, zscore or none)")
    return np.ascontiguousarray(out, dtype=np.float32)


def load_prepared(path: str | Path, config: Configuration) -> np.ndarray:
    return prepare_image(read_classification_image(path, len(config.normalization)), config)


def _signature(config: Configuration) -> dict:
    return {"patch_size": list(config.patch_size), "normalization": list(config.normalization),
            "resize": config.extra.get("resize", "pad")}


def _work(args: tuple[str, Configuration]) -> np.ndarray:
    return load_prepared(args[0], args[1])


def cache_is_current(folder: Path, items: list[ImageItem], config: Configuration, subset: str = "imagesTr") -> bool:
    index_file, array_file = folder / f"{subset}.json", folder / f"{subset}.npy"
    if not (index_file.is_file() and array_file.is_file()):
        return False
    try:
        index = json.loads(index_file.read_text())
    except json.JSONDecodeError:
        return False
    return (index.get("settings") == _signature(config) and index.get("ids") == [it.image_id for it in items]
            and index.get("labels") == [it.label for it in items]
            and index.get("files") == [str(it.file) for it in items])


def preprocess_images(items: list[ImageItem], config: Configuration, out_folder: str | Path,
                      subset: str = "imagesTr", num_workers: int = 1, verbose: bool = True) -> Path:
    """Write ``<subset>.npy`` + ``<subset>.json``; skipped when an identical cache exists."""
    folder = Path(out_folder)
    if cache_is_current(folder, items, config, subset):
        return folder / f"{subset}.npy"
    folder.mkdir(parents=True, exist_ok=True)
    shape = (len(items), len(config.normalization), *[int(s) for s in config.patch_size])
    jobs = [(str(it.file), config) for it in items]
    with atomic_path(folder / f"{subset}.npy") as tmp:
        # Written slice by slice into a memmap, so datasets larger than memory can be cached.
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        bar = tqdm(total=len(items), desc=f"preprocessing {subset}", disable=not verbose)
        if num_workers > 1:
            with get_context("spawn").Pool(num_workers) as pool:
                for i, arr in enumerate(pool.imap(_work, jobs, chunksize=8)):
                    out[i] = arr
                    bar.update()
        else:
            for i, job in enumerate(jobs):
                out[i] = _work(job)
                bar.update()
        bar.close()
        out.flush()
        del out
    # The index is written last: its presence marks a finished cache.
    write_json_atomic({
        "ids": [it.image_id for it in items], "labels": [it.label for it in items],
        "case_ids": [it.case_id for it in items], "files": [str(it.file) for it in items],
        "class_names": config.extra.get("class_names", []), "shape": list(shape), "settings": _signature(config),
    }, folder / f"{subset}.json")
    return folder / f"{subset}.npy"


def load_cache(folder: str | Path, subset: str = "imagesTr") -> tuple[np.ndarray, dict]:
    """The cached array (memory-mapped, read-only) and its index."""
    folder = Path(folder)
    index_file = folder / f"{subset}.json"
    if not index_file.is_file():
        raise ClassificationDataError(f"{index_file}: not found (run mednext_plan_and_preprocess first)")
    index = json.loads(index_file.read_text())
    data = np.load(folder / f"{subset}.npy", mmap_mode="r")
    if list(data.shape) != index["shape"]:
        raise ClassificationDataError(f"{folder / (subset + '.npy')}: shape {data.shape} differs from its "
                                      f"index {index['shape']}; delete the folder and preprocess again")
    return data, index


def default_num_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 1) // 2))


def plan_and_preprocess_classification(dataset_name: str, input_size: int | None = None,
                                       max_input_size: int | None = None, num_workers: int = 1,
                                       num_folds: int = 5, replan: bool = False, preprocess: bool = True,
                                       verbose: bool = True) -> Path:
    """Fingerprint, plan, cache and split one classification dataset; returns its preprocessed folder.

    An existing ``plans.json`` is kept (it may hold the user's edits) unless ``replan`` or an explicit
    ``input_size`` asks for a new plan; an existing ``splits_final.json`` is never overwritten.
    """
    from mednext_fw import paths
    from mednext_fw.io.dataset_json import DatasetJson
    from mednext_fw.planners.classification import (CONFIG_NAME, DEFAULT_MAX_INPUT, image_fingerprint,
                                                    list_images, plan_classification)
    from mednext_fw.planners.plans import Plans
    from mednext_fw.preprocessing.classification_splits import make_splits

    raw_dir = paths.raw_root() / dataset_name
    out_dir = paths.preprocessed_root() / dataset_name
    dataset = DatasetJson.load(raw_dir / "dataset.json")
    if dataset.task != "classification":
        raise ClassificationDataError(f"{raw_dir / 'dataset.json'}: task is '{dataset.task}', not classification")
    items = list_images(raw_dir, dataset)
    fingerprint = image_fingerprint(items)
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
