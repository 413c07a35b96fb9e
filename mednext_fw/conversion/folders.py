"""Any image folder + label folder, matched by file name -> a conversion plan.

An image ``X<ending>`` belongs to the label ``X<ending>``. Multi-channel cases are given either as
one 4D file ``X<ending>`` (split by the writer) or as ``X_0000<ending>``, ``X_0001<ending>``, ...
Channel names default to ``image`` (one channel) or ``image_0``, ``image_1``, ... (several), names
that select per-image z-score normalisation; pass ``--channel-names CT`` for CT. Labels come from
``--labels-json`` (``{"background": 0, "tumour": 1}``) or are read from the label files' values
and named ``label_1``, ``label_2``, ...
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mednext_fw.conversion.common import CaseSpec, ConversionError, ConversionPlan, common_ending, \
    list_files, match_pairs, read_header, split_ending
from mednext_fw.io.cases import split_channel
from mednext_fw.io.dataset_json import DatasetJson, DatasetJsonError
from mednext_fw.io.image_io import ImageReadError, read_seg


def group_images(files: list[Path], known_cases: set[str] | None = None) -> dict[str, tuple[Path, ...]]:
    """``X`` -> (X,) and ``X_0000``, ``X_0001`` -> (X_0000, X_0001), ordered by channel index.

    With ``known_cases`` (training), an exact stem match wins over the channel pattern, so a case
    that is itself called ``scan_0001`` is not mistaken for channel 1 of ``scan``.
    """
    singles: dict[str, Path] = {}
    channels: dict[str, dict[int, Path]] = {}
    for p in files:
        stem, _ = split_ending(p)
        split = split_channel(stem)
        if known_cases is not None and stem in known_cases:
            singles[stem] = p
        elif split and (known_cases is None or split[0] in known_cases):
            channels.setdefault(split[0], {})[split[1]] = p
        else:
            singles[stem] = p
    out: dict[str, tuple[Path, ...]] = {}
    for case, by_ch in channels.items():
        if case in singles:
            raise ConversionError(f"case {case}: both {singles[case].name} and channel files "
                                  f"({', '.join(p.name for p in by_ch.values())}); keep one form")
        if sorted(by_ch) != list(range(len(by_ch))):
            raise ConversionError(f"case {case}: channel files must be numbered _0000.._{len(by_ch) - 1:04d}, "
                                  f"found {', '.join(by_ch[i].name for i in sorted(by_ch))}")
        out[case] = tuple(by_ch[i] for i in sorted(by_ch))
    out.update({case: (p,) for case, p in singles.items()})
    return dict(sorted(out.items()))


def count_channels(images: tuple[Path, ...]) -> int:
    if len(images) > 1:
        return len(images)
    header = read_header(images[0])
    return header.size[3] if header is not None and header.dim == 4 else 1


def default_channel_names(n: int) -> dict[str, str]:
    return {"0": "image"} if n == 1 else {str(i): f"image_{i}" for i in range(n)}


def labels_from_json(path: Path) -> tuple[dict[str, int | list[int]], list[int] | None]:
    """Labels (and, for region-based datasets, ``regions_class_order``) from a JSON file.

    The file is either the mapping itself or a whole dataset.json whose ``labels`` are taken.
    """
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConversionError(f"{path}: cannot read the labels JSON ({exc})") from exc
    order = None
    if isinstance(d, dict) and isinstance(d.get("labels"), dict):
        d, order = d["labels"], d.get("regions_class_order")
    if not isinstance(d, dict) or not d:
        raise ConversionError(f"{path}: expected a JSON object mapping label names to values")
    labels = dict(d) if "background" in d or 0 in d.values() else {"background": 0, **d}
    try:
        DatasetJson.from_dict({"channel_names": {"0": "x"}, "labels": labels, "file_ending": ".nii.gz",
                               "numTraining": 1, "regions_class_order": order}, source=str(path))
    except DatasetJsonError as exc:
        raise ConversionError(str(exc)) from exc
    return labels, order


def labels_from_files(label_files: list[Path]) -> dict[str, int]:
    """Background 0 plus ``label_<v>`` for every value found; values must be 0..N without gaps."""
    values: set[int] = set()
    for p in tqdm(label_files, desc="reading label values", unit="file", leave=False):
        try:
            seg, _ = read_seg(p)
        except ImageReadError as exc:
            raise ConversionError(str(exc)) from exc
        found = np.unique(seg)
        if found.size and found.min() < 0:
            raise ConversionError(f"{p}: negative label value {int(found.min())}")
        values.update(int(v) for v in found)
    expected = set(range(max(values, default=0) + 1))
    if values != expected:
        raise ConversionError(f"label values {sorted(values)} (in {label_files[0].parent}) are not consecutive; "
                              f"missing {sorted(expected - values)}. Pass --labels-json to declare the labels")
    return {"background": 0, **{f"label_{v}": v for v in sorted(values) if v}}


def folders_plan(images_dir: str | Path, labels_dir: str | Path, name: str,
                 channel_names: list[str] | None = None, labels_json: str | Path | None = None,
                 test_images_dir: str | Path | None = None) -> ConversionPlan:
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    image_files, label_files = list_files(images_dir), list_files(labels_dir)
    test_files = list_files(Path(test_images_dir)) if test_images_dir else []
    ending = common_ending(image_files + label_files + test_files, f"{images_dir} / {labels_dir}")
    label_map = {split_ending(p)[0]: p for p in label_files}
    images = group_images(image_files, set(label_map))
    match_pairs({c: f[0] for c, f in images.items()}, label_map, images_dir, labels_dir)
    if not images:
        raise ConversionError(f"{images_dir}: no images found")
    first = next(iter(images))
    n = len(channel_names) if channel_names else count_channels(images[first])
    channels = {str(i): c for i, c in enumerate(channel_names)} if channel_names else default_channel_names(n)
    if labels_json:
        labels, order = labels_from_json(Path(labels_json))
    else:
        labels, order = labels_from_files(label_files), None
    dataset = DatasetJson(channel_names=channels, labels=labels, file_ending=ending, num_training=len(images),
                          name=name, regions_class_order=order, extra={"converted_from": "image/label folders"})
    tests = group_images(test_files) if test_files else {}
    return ConversionPlan(
        name=name,
        dataset=dataset,
        training=[CaseSpec(c, images[c], label_map[c]) for c in images],
        test=[CaseSpec(c, tests[c]) for c in tests],
        source=images_dir,
    )
