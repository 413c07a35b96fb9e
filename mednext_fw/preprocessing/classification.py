"""Resample + normalise + fit classification images into one memory-mappable array per configuration.

Output in ``$MEDNEXT_preprocessed/Dataset<ID>_<Name>/<data_identifier>/``: ``imagesTr.npy`` (float32,
``(N, C, S, S)``) and ``imagesTr.json`` (the index: image ids, labels, case ids, source files and the
settings that produced the array). :func:`prepare_image` is the one function used by both this cache
and inference, so a predicted image sees exactly the training preprocessing. The steps, in order:

1. resample to the planned in-plane spacing when the plans say so and the image's spacing is known
   (NIfTI/NRRD/MHA slices carry it; PNG/JPEG/TIFF take ``dataset.json["spacing"]`` if given), so
   a pixel means the same millimetres in every image and anisotropic pixels become square;
2. normalise each channel over the image itself (before any padding enters the statistics);
3. fit to a square: ``pad`` (centre on a canvas of the background value; aspect kept), ``crop``
   (centre crop; aspect kept) or ``stretch``;
4. resize to the planned input side (bilinear with antialiasing, kept inside the input's range).
"""
from __future__ import annotations

import json
from multiprocessing import get_context
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mednext_fw.io.atomic import atomic_path, write_json_atomic
from mednext_fw.io.image_io import NATURAL_2D_ENDINGS, ImageReadError, file_ending_of, read_image
from mednext_fw.planners.classification import ClassificationDataError, ImageItem
from mednext_fw.planners.plans import Configuration

_GREY_8BIT = ("L", "P", "LA", "1")
SCHEMES = ("rgb_0_1", "zscore", "zscore_fg", "percentile", "none")
PERCENTILES = (0.5, 99.5)
FOREGROUND_FRACTION = 0.1


def read_classification_image(path: str | Path, num_channels: int,
                              default_spacing: Sequence[float] | None = None) -> tuple[np.ndarray, list[float] | None]:
    """One image file -> ``(C, H, W)`` array in its own value range, and its (row, column) spacing in mm.

    Files with geometry report their own spacing; natural images report ``default_spacing`` (the
    dataset's, possibly None). A 3D file with one singleton axis is taken as the slice it holds.
    """
    path = Path(path)
    spacing = list(default_spacing) if default_spacing is not None else None
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
        data, props = read_image(path)  # (C, Z, Y, X) with spacing (Z, Y, X)
        singleton = [a for a in range(3) if data.shape[1 + a] == 1]
        if props.is_2d:
            singleton = [0]
        if not singleton:
            raise ImageReadError(f"{path}: classification needs 2D images (or a 3D file holding one slice), "
                                 f"got shape {data.shape[1:]}")
        axis = singleton[0]
        arr = np.take(data, 0, axis=1 + axis)
        spacing = [float(s) for a, s in enumerate(props.spacing) if a != axis]
    if arr.shape[0] == 1 and num_channels == 3:
        arr = np.repeat(arr, 3, 0)
    if arr.shape[0] != num_channels:
        raise ImageReadError(f"{path}: has {arr.shape[0]} channel(s), the plans expect {num_channels}")
    return arr, spacing


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear with antialiasing, clamped: antialiasing rounds past the input range."""
    if list(x.shape[1:]) == [int(s) for s in size]:
        return x
    lo, hi = x.amin(dim=(1, 2), keepdim=True), x.amax(dim=(1, 2), keepdim=True)
    x = F.interpolate(x[None], size=[int(s) for s in size], mode="bilinear", align_corners=False, antialias=True)[0]
    return torch.maximum(torch.minimum(x, hi), lo)


def resampled_shape(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]) -> list[int]:
    """Pixels per axis after resampling from ``spacing`` to ``target`` (the physical extent is kept)."""
    return [max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target)]


def normalize_channel(x: np.ndarray, scheme: str) -> np.ndarray:
    """One channel by its own statistics. ``zscore_fg``: mean/std over the foreground, the pixels above
    10% of the image's robust range (minimum to 99th percentile). Not "above the minimum": templates
    and some scanners leave low noise in the air (MNI152's is 1-27 of 255, Colin27's exactly 0), and
    counting it would normalise two heads differently."""
    if scheme == "rgb_0_1":
        return x / 255.0
    if scheme == "zscore":
        return (x - x.mean()) / max(float(x.std()), 1e-8)
    if scheme == "zscore_fg":
        lo = float(x.min())
        fg = x[x > lo + FOREGROUND_FRACTION * (float(np.percentile(x, 99)) - lo)]
        ref = fg if fg.size >= 0.05 * x.size else x  # an almost empty image: whole-image statistics
        return (x - ref.mean()) / max(float(ref.std()), 1e-8)
    if scheme == "percentile":
        lo, hi = np.percentile(x, PERCENTILES)
        return (np.clip(x, lo, hi) - lo) / max(float(hi - lo), 1e-8)
    if scheme == "none":
        return x
    raise ClassificationDataError(f"normalisation '{scheme}' is not defined for classification "
                                  f"(use {', '.join(SCHEMES)})")


def _fit_square(x: torch.Tensor, mode: str) -> torch.Tensor:
    c, h, w = x.shape
    if h == w or mode == "stretch":
        return x
    if mode == "crop":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        return x[:, top:top + side, left:left + side]
    if mode != "pad":
        raise ClassificationDataError(f"resize mode '{mode}' is not defined (use pad, crop or stretch)")
    side = max(h, w)
    canvas = x.amin(dim=(1, 2), keepdim=True).expand(c, side, side).clone()  # each channel's background
    top, left = (side - h) // 2, (side - w) // 2
    canvas[:, top:top + h, left:left + w] = x
    return canvas


def prepare_image(arr: np.ndarray, config: Configuration, spacing: Sequence[float] | None = None) -> np.ndarray:
    """``(C, H, W)`` raw image (+ its spacing) -> ``(C, S, S)`` float32 as the plans say (module docstring)."""
    x = np.ascontiguousarray(arr, dtype=np.float32)
    if config.extra.get("resample", False) and spacing is not None:
        target = resampled_shape(x.shape[1:], spacing, config.spacing)
        x = _resize(torch.from_numpy(x), target).numpy()
    x = np.stack([normalize_channel(x[c], scheme) for c, scheme in enumerate(config.normalization)])
    t = _fit_square(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), config.extra.get("resize", "pad"))
    out = _resize(t, config.patch_size).numpy()
    return np.ascontiguousarray(out, dtype=np.float32)


def load_prepared(path: str | Path, config: Configuration) -> np.ndarray:
    arr, spacing = read_classification_image(path, len(config.normalization), config.extra.get("default_spacing"))
    return prepare_image(arr, config, spacing)


def _signature(config: Configuration) -> dict:
    return {"patch_size": list(config.patch_size), "normalization": list(config.normalization),
            "resize": config.extra.get("resize", "pad"), "resample": bool(config.extra.get("resample", False)),
            "spacing": list(config.spacing), "default_spacing": config.extra.get("default_spacing")}


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
