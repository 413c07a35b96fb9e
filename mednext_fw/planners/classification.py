"""Plan the ``2d_cls`` configuration of a classification dataset (``"task": "classification"``).

Two raw layouts are accepted:

- ImageFolder: ``imagesTr/<class_name>/<image>.<png|jpg|tif|nii.gz|...>``; class folder names are
  keys of ``dataset.json["labels"]``.
- CSV listing: ``dataset.json["labels_file"]`` (default ``labelsTr.csv`` next to dataset.json) with the
  columns ``file,label``; ``file`` is relative to ``imagesTr/``, ``label`` is a class name or its index.

Optional dataset.json keys read here: ``case_id_regex`` (which images belong to one patient),
``spacing`` (``[row, column]`` mm of natural images, which carry none), ``mirror_axes`` (the image
axes, 0 = up-down and 1 = left-right, whose flip never changes the class; none when absent).

Choices and their reasons (they are written into ``plans.planner_notes`` too):

- Spacing: when files carry a pixel spacing (NIfTI/NRRD/MHA slices, or dataset.json ``spacing``),
  images are resampled to one isotropic in-plane spacing, the median over images of each image's
  finest axis, so anisotropic pixels become square and a pixel means the same mm everywhere.
- Input side: the median of the (resampled) images' longer sides, rounded to a multiple of 16 (the
  networks downsample by 16) and clamped to [32, ``max_input_size``] (default 224, the input HoViT's
  reference position biases were drawn for). ``input_size`` overrides the rule. Images are padded to
  a square first (aspect kept).
- Channels: 3 when any image is colour, else 1 (grey images are replicated, never colour reduced).
- Normalisation per channel: MR-like channel names (T1, T2, FLAIR, PD, DWI, ADC, MR...) ->
  ``zscore_fg`` per image (MR intensities carry no absolute meaning, scanners differ); other 8-bit
  images -> ``rgb_0_1`` (divide by 255, as the HoViT recipe); anything else -> ``zscore`` per image.
- Augmentation: preset ``default`` (see :mod:`mednext_fw.trainers.data.classification_augmentation`);
  flips only on the axes dataset.json declares safe.
- Schedule: cosine annealing (``lr_schedule``; the recipes' ``constant`` needs far longer runs).
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
from mednext_fw.io.image_io import NATURAL_2D_ENDINGS, ImageReadError, file_ending_of, read_header
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


def _spacing_of(dataset: DatasetJson, source: Path) -> list[float] | None:
    value = dataset.extra.get("spacing")
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) and v > 0 for v in value)):
        raise ClassificationDataError(f"{source}: 'spacing' must be [row_mm, column_mm] (two positive numbers), "
                                      f"got {value!r}")
    return [float(v) for v in value]


def mirror_axes_of(dataset: DatasetJson, source: Path) -> list[int]:
    value = dataset.extra.get("mirror_axes", [])
    if not (isinstance(value, list) and all(v in (0, 1) for v in value) and len(set(value)) == len(value)):
        raise ClassificationDataError(f"{source}: 'mirror_axes' must list image axes 0 (up-down) and/or 1 "
                                      f"(left-right) whose flip keeps the class, got {value!r}")
    return sorted(value)


def _header(file: Path, default_spacing: list[float] | None) -> tuple[list[int], str, list[float] | None]:
    """(rows, columns), colour mode ("F" for files with geometry) and (row, column) spacing or None."""
    if file_ending_of(file) in NATURAL_2D_ENDINGS:
        from PIL import Image

        with Image.open(file) as im:
            return [im.height, im.width], im.mode, default_spacing
    header = read_header(file)  # SimpleITK order (x, y[, z])
    size, spacing = list(header.size), list(header.spacing)
    if len(size) == 3:
        if 1 not in size:
            raise ClassificationDataError(f"{file}: classification needs 2D images, got size {tuple(size)}")
        axis = size.index(1)
        size, spacing = size[:axis] + size[axis + 1:], spacing[:axis] + spacing[axis + 1:]
    return [size[1], size[0]], "F", [float(spacing[1]), float(spacing[0])]


def image_fingerprint(items: list[ImageItem], dataset: DatasetJson | None = None) -> dict:
    """Sizes, colour modes, bit depths and spacings read from the headers only (no pixel decoding)."""
    default = _spacing_of(dataset, Path("dataset.json")) if dataset is not None else None
    sizes, modes, spacings = [], Counter(), []
    for it in items:
        try:
            size, mode, spacing = _header(it.file, default)
        except (OSError, ImageReadError) as exc:
            raise ClassificationDataError(f"{it.file}: cannot be read as an image ({exc})") from exc
        sizes.append(size)
        modes[mode] += 1
        spacings.append(spacing)
    arr = np.asarray(sizes)
    return {
        "num_images": len(items),
        "num_cases": len({it.case_id for it in items}),
        "class_counts": dict(sorted(Counter(it.label for it in items).items())),
        "median_size": [int(v) for v in np.median(arr, 0)],
        "min_size": [int(v) for v in arr.min(0)],
        "max_size": [int(v) for v in arr.max(0)],
        "sizes": sizes,
        "spacings": spacings,
        "modes": dict(modes),
    }
def _round16(x: float) -> int:
    return int(max(16, 16 * round(x / 16)))


MR_CHANNEL = re.compile(r"(^|[^a-z])(t1|t2|flair|pd|dwi|adc|swi|mr|mri|bold|dce|t1w|t2w|t1c|t1ce|t1gd)([^a-z]|$)",
                        re.IGNORECASE)


def normalization_for(channel: str, eight_bit: bool) -> tuple[str, str]:
    """(scheme, reason) for one channel by its name and bit depth."""
    if MR_CHANNEL.search(channel):
        return "zscore_fg", f"'{channel}' is MR-like: per-image z-score over the foreground"
    if eight_bit:
        return "rgb_0_1", f"'{channel}': 8-bit image, divided by 255 (the recipes)"
    return "zscore", f"'{channel}': not 8-bit, per-image z-score"


def _plan_spacing(fingerprint: dict, notes: list[str]) -> tuple[list[float], bool, list[int]]:
    """Target (row, column) spacing, whether to resample, and the median size after resampling."""
    known = [(size, sp) for size, sp in zip(fingerprint["sizes"], fingerprint["spacings"]) if sp is not None]
    if not known:
        notes.append("no pixel spacing in the files or dataset.json: images are used as stored")
        return [1.0, 1.0], False, list(fingerprint["median_size"])
    t = float(np.median([min(sp) for _, sp in known]))
    sizes = [[max(1, round(n * s / t)) for n, s in zip(size, sp)] for size, sp in known]
    unknown = len(fingerprint["sizes"]) - len(known)
    notes.append(f"spacing {t:g} x {t:g} mm: median finest pixel spacing of {len(known)} image(s); images are "
                 "resampled to it before fitting" + (f" ({unknown} without spacing used as stored)" if unknown else ""))
    return [t, t], True, [int(v) for v in np.median(np.asarray(sizes), 0)]


def plan_classification(dataset_name: str, dataset: DatasetJson, fingerprint: dict, num_folds: int = 5,
                        input_size: int | None = None, max_input_size: int = DEFAULT_MAX_INPUT,
                        network: NetworkPlan | None = None) -> Plans:
    source = Path(dataset_name) / "dataset.json"
    values = sorted(int(v) for k, v in dataset.labels.items() if k != "ignore" and not isinstance(v, (list, tuple)))
    if values != list(range(len(values))):
        raise ClassificationDataError(f"{source}: class labels must be 0..K-1, got {values}")
    notes: list[str] = []
    spacing, resample, median = _plan_spacing(fingerprint, notes)
    if input_size is None:
        side = min(max(_round16(max(median)), MIN_INPUT), max_input_size)
        notes.append(f"input {side}x{side}: median longer side {max(median)} rounded to 16, clamped to "
                     f"[{MIN_INPUT}, {max_input_size}]; padded to a square first (aspect kept)")
    else:
        if input_size < 16 or input_size % 16:
            raise ClassificationDataError(f"input size must be a positive multiple of 16, got {input_size}")
        side = int(input_size)
        notes.append(f"input {side}x{side}: set by the user; padded to a square first (aspect kept)")
    modes = fingerprint["modes"]
    colour = any(m in ("RGB", "RGBA", "P", "CMYK", "YCbCr") for m in modes)
    channels = 3 if colour else 1
    eight_bit = all(m in ("L", "RGB", "RGBA", "P", "LA", "CMYK", "YCbCr", "1") for m in modes)
    names = dataset.channel_name_list
    names = names * channels if len(names) == 1 else names
    if len(names) != channels:
        names = [names[0]] * channels
    chosen = [normalization_for(n, eight_bit) for n in names]
    notes.append(f"{channels} channel(s) ({'colour' if colour else 'grey'}); normalisation: "
                 + "; ".join(dict.fromkeys(reason for _, reason in chosen)))
    mirror = mirror_axes_of(dataset, source)
    notes.append(f"augmentation preset 'default'; flips on axes {mirror} as dataset.json 'mirror_axes' declares"
                 if mirror else "augmentation preset 'default'; no flips (dataset.json declares no 'mirror_axes': a "
                 "flip may turn one class into another's look)")
    notes.append("learning rate annealed by cosine (timm's default; the recipes' constant rate: "
                 "'lr_schedule': 'constant')")
    n_train = fingerprint["num_images"] * (num_folds - 1) // max(num_folds, 1)
    batch = int(max(2, min(DEFAULT_BATCH, n_train // 4)))
    notes.append(f"batch {batch}: recipe 32, at least 4 steps per epoch on ~{n_train} training images")
    config = Configuration(
        name=CONFIG_NAME, dim=2, spacing=spacing, patch_size=[side, side], batch_size=batch,
        median_image_size=list(median), normalization=[n for n, _ in chosen], use_mask_for_norm=[False] * channels,
        network=network or NetworkPlan(name="hovit", variant="S", kernel_size=3, deep_supervision=False),
        data_identifier=f"mednextPlans_{CONFIG_NAME}", batch_dice=False, mirror_axes=mirror,
        task="classification",
        extra={"num_channels": channels, "class_names": dataset.class_names, "num_classes": len(dataset.class_names),
               "resize": "pad", "resample": resample, "default_spacing": _spacing_of(dataset, source),
               "augmentation": {"preset": "default"}, "lr_schedule": "cosine",
               # network name -> builder arguments naming local weight files, e.g. {"xray_moe":
               # {"convnext_weights": "convnext_tiny.pth", "resnet_weights": "resnet18.pth"}}
               "pretrained": {}},
    )
    return Plans(dataset_name=dataset_name, transpose_forward=[0, 1, 2], transpose_backward=[0, 1, 2],
                 original_median_spacing=spacing, original_median_shape=list(median),
                 configurations={CONFIG_NAME: config}, planner_notes=notes)
