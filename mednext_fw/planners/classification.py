"""Plan the ``2d_cls`` configuration of a classification dataset (``"task": "classification"``).

Two raw layouts are accepted:

- ImageFolder: ``imagesTr/<class_name>/<image>.<png|jpg|tif|...>``; class folder names are keys of
  ``dataset.json["labels"]``.
- CSV listing: ``dataset.json["labels_file"]`` (default ``labelsTr.csv`` next to dataset.json) with the
  columns ``file,label``; ``file`` is relative to ``imagesTr/``, ``label`` is a class name or its index.

Choices and their reasons (they are written into ``plans.planner_notes`` too):

- Input side: the median of the images' longer sides, rounded to a multiple of 16 (the networks
  downsample by 16) and clamped to [32, ``max_input_size``] (default 224, the input HoViT's reference
  position biases were drawn for; smaller inputs are fine because the networks size their tables from
  the input). ``input_size`` overrides the rule.
- Channels: 3 when any image is colour, else 1 (grey images are replicated, never colour reduced).
- Normalisation: 8-bit images -> ``rgb_0_1`` (divide by 255, as the HoViT recipe); anything else
  (16-bit, float) -> ``zscore`` per image, because its value range carries no fixed meaning.
- Batch size: 32 (the HoViT recipe), lowered so a fold's training set gives at least 4 steps per epoch.
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mednext_fw.errors import UserError
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import NATURAL_2D_ENDINGS, file_ending_of
from mednext_fw.planners.plans import Configuration, NetworkPlan, Plans

CONFIG_NAME = "2d_cls"
DEFAULT_CSV = "labelsTr.csv"
# "<case>_<word>_<index>" or "<case>_<index>": e.g. colin27_1mm_axial_030 -> colin27_1mm.
DEFAULT_CASE_REGEX = r"^(?P<case>.+?)(?:_[A-Za-z]+)?_\d+$"
MIN_INPUT, DEFAULT_MAX_INPUT, DEFAULT_BATCH = 32, 224, 32


class ClassificationDataError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class ImageItem:
    image_id: str  # unique: path below imagesTr without the file ending
    file: Path
    label: int
    case_id: str


def _case_regex(dataset: DatasetJson, source: Path) -> re.Pattern:
    pattern = dataset.extra.get("case_id_regex", DEFAULT_CASE_REGEX)
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ClassificationDataError(f"{source}: 'case_id_regex' {pattern!r} is not a valid regex ({exc})") from exc


def case_id_of(stem: str, regex: re.Pattern) -> str:
    """The case a file belongs to (group ``case`` or group 1 of the regex); the stem itself if no match."""
    m = regex.match(stem)
    if not m:
        return stem
    return m.groupdict().get("case") or (m.group(1) if regex.groups else stem)


def _label_index(value: str, dataset: DatasetJson, where: str) -> int:
    names = dataset.class_names
    if value in dataset.labels:
        return int(dataset.labels[value])
    if value.lstrip("-").isdigit() and 0 <= int(value) < len(names):
        return int(value)
    raise ClassificationDataError(f"{where}: label {value!r} is neither a class name {names} nor an index "
                                  f"0..{len(names) - 1}")


def _is_image(p: Path, dataset: DatasetJson) -> bool:
    return p.is_file() and not p.name.startswith(".") and (
        file_ending_of(p) in NATURAL_2D_ENDINGS or p.name.endswith(dataset.file_ending))


def _strip(name: str) -> str:
    return name[: -len(file_ending_of(name))] if file_ending_of(name) else name


def _from_csv(csv_path: Path, images: Path, dataset: DatasetJson) -> list[tuple[Path, int]]:
    out = []
    with open(csv_path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["file", "label"]:
        rows = rows[1:]
    for i, row in enumerate(rows, start=1):
        where = f"{csv_path} row {i}"
        if len(row) < 2:
            raise ClassificationDataError(f"{where}: expected 'file,label', got {row}")
        file = images / row[0].strip()
        if not file.is_file():
            raise ClassificationDataError(f"{where}: image {file} not found")
        out.append((file, _label_index(row[1].strip(), dataset, where)))
    return out


def _from_folders(images: Path, dataset: DatasetJson) -> list[tuple[Path, int]]:
    out = []
    for sub in sorted(p for p in images.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sub.name not in dataset.labels:
            raise ClassificationDataError(f"{sub}: folder name is not a class of dataset.json labels "
                                          f"{dataset.class_names}")
        label = int(dataset.labels[sub.name])
        out.extend((p, label) for p in sorted(sub.rglob("*")) if _is_image(p, dataset))
    return out


def list_images(raw_dir: str | Path, dataset: DatasetJson | None = None, subset: str = "imagesTr") -> list[ImageItem]:
    """Every labelled image of a classification dataset, in a stable order."""
    raw_dir = Path(raw_dir)
    dataset = dataset or DatasetJson.load(raw_dir / "dataset.json")
    images = raw_dir / subset
    if not images.is_dir():
        raise ClassificationDataError(f"{images}: folder not found")
    csv_name = dataset.extra.get("labels_file", DEFAULT_CSV)
    csv_path = raw_dir / csv_name
    if csv_path.is_file():
        pairs = _from_csv(csv_path, images, dataset)
    elif "labels_file" in dataset.extra:
        raise ClassificationDataError(f"{csv_path}: 'labels_file' named in dataset.json does not exist")
    else:
        pairs = _from_folders(images, dataset)
    if not pairs:
        raise ClassificationDataError(f"{images}: no images found (expected {subset}/<class_name>/*.png|jpg|tif "
                                      f"or a {csv_name} listing)")
    regex = _case_regex(dataset, raw_dir / "dataset.json")
    items, seen = [], set()
    for file, label in pairs:
        image_id = _strip(file.relative_to(images).as_posix())
        if image_id in seen:
            raise ClassificationDataError(f"{file}: listed twice")
        seen.add(image_id)
        items.append(ImageItem(image_id, file, label, case_id_of(_strip(file.name), regex)))
    return items


def image_fingerprint(items: list[ImageItem]) -> dict:
    """Sizes, colour modes and bit depths read from the headers only (no pixel decoding)."""
    from PIL import Image

    sizes, modes = [], Counter()
    for it in items:
        try:
            with Image.open(it.file) as im:
                sizes.append([im.height, im.width])
                modes[im.mode] += 1
        except OSError as exc:
            raise ClassificationDataError(f"{it.file}: cannot be read as an image ({exc})") from exc
    arr = np.asarray(sizes)
    return {
        "num_images": len(items),
        "num_cases": len({it.case_id for it in items}),
        "class_counts": dict(sorted(Counter(it.label for it in items).items())),
        "median_size": [int(v) for v in np.median(arr, 0)],
        "min_size": [int(v) for v in arr.min(0)],
        "max_size": [int(v) for v in arr.max(0)],
        "modes": dict(modes),
    }


def _round16(x: float) -> int:
    return int(max(16, 16 * round(x / 16)))


def plan_classification(dataset_name: str, dataset: DatasetJson, fingerprint: dict, num_folds: int = 5,
                        input_size: int | None = None, max_input_size: int = DEFAULT_MAX_INPUT,
                        network: NetworkPlan | None = None) -> Plans:
    values = sorted(int(v) for k, v in dataset.labels.items() if k != "ignore" and not isinstance(v, (list, tuple)))
    if values != list(range(len(values))):
        raise ClassificationDataError(f"{dataset_name}/dataset.json: class labels must be 0..K-1, got {values}")
    notes = []
    median = fingerprint["median_size"]
    if input_size is None:
        side = min(max(_round16(max(median)), MIN_INPUT), max_input_size)
        notes.append(f"input {side}x{side}: median longer side {max(median)} rounded to 16, clamped to "
                     f"[{MIN_INPUT}, {max_input_size}]")
    else:
        if input_size < 16 or input_size % 16:
            raise ClassificationDataError(f"input size must be a positive multiple of 16, got {input_size}")
        side = int(input_size)
        notes.append(f"input {side}x{side}: set by the user")
    modes = fingerprint["modes"]
    colour = any(m in ("RGB", "RGBA", "P", "CMYK", "YCbCr") for m in modes)
    channels = 3 if colour else 1
    eight_bit = all(m in ("L", "RGB", "RGBA", "P", "LA", "CMYK", "YCbCr", "1") for m in modes)
    norm = "rgb_0_1" if eight_bit else "zscore"
    notes.append(f"{channels} channel(s) ({'colour' if colour else 'grey'}); normalisation {norm} "
                 f"({'8-bit images' if eight_bit else 'non-8-bit images: per-image z-score'})")
    n_train = fingerprint["num_images"] * (num_folds - 1) // max(num_folds, 1)
    batch = int(max(2, min(DEFAULT_BATCH, n_train // 4)))
    notes.append(f"batch {batch}: recipe 32, at least 4 steps per epoch on ~{n_train} training images")
    config = Configuration(
        name=CONFIG_NAME, dim=2, spacing=[1.0, 1.0], patch_size=[side, side], batch_size=batch,
        median_image_size=list(median), normalization=[norm] * channels, use_mask_for_norm=[False] * channels,
        network=network or NetworkPlan(name="hovit", variant="S", kernel_size=3, deep_supervision=False),
        data_identifier=f"mednextPlans_{CONFIG_NAME}", batch_dice=False, mirror_axes=[],
        task="classification",
        extra={"num_channels": channels, "class_names": dataset.class_names, "resize": "pad",
               "num_classes": len(dataset.class_names)},
    )
    return Plans(dataset_name=dataset_name, transpose_forward=[0, 1, 2], transpose_backward=[0, 1, 2],
                 original_median_spacing=[1.0, 1.0], original_median_shape=list(median),
                 configurations={CONFIG_NAME: config}, planner_notes=notes)
