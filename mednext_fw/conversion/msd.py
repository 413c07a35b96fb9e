"""Medical Segmentation Decathlon task (``TaskXX_Name``) -> a conversion plan.

Images in ``imagesTr``/``imagesTs`` are 3D (one channel) or 4D (channels along the 4th axis);
the writer splits 4D files into ``CASE_0000``, ``CASE_0001``, ... Labels are matched by file name.
The Decathlon ``dataset.json`` gives ``modality`` (-> ``channel_names``) and ``labels`` keyed by
value (-> our name -> value mapping). macOS ``._`` files, which the official archives contain, are
skipped.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from mednext_fw.conversion.common import CaseSpec, ConversionError, ConversionPlan, common_ending, list_files, \
    match_pairs, split_ending
from mednext_fw.io.dataset_json import DatasetJson

TASK_RE = re.compile(r"^Task(?P<id>\d+)_(?P<name>.+)$")
KEPT_KEYS = ("reference", "licence", "release", "tensorImageSize")


def task_id_and_name(folder: Path) -> tuple[int | None, str | None]:
    m = TASK_RE.match(folder.name)
    return (int(m.group("id")), m.group("name")) if m else (None, None)


def translate_dataset_json(d: dict, source: Path) -> tuple[dict[str, str], dict[str, int]]:
    """Decathlon ``modality`` / ``labels`` (value -> name) -> our channel_names / labels (name -> value)."""
    modality = d.get("modality", d.get("channel_names"))
    if not isinstance(modality, dict) or not modality:
        raise ConversionError(f"{source}: needs a non-empty 'modality' mapping like {{\"0\": \"CT\"}}")
    try:
        channels = {str(int(k)): str(v) for k, v in sorted(modality.items(), key=lambda kv: int(kv[0]))}
    except ValueError as exc:
        raise ConversionError(f"{source}: 'modality' keys must be channel indices 0, 1, ...") from exc
    if list(channels) != [str(i) for i in range(len(channels))]:
        raise ConversionError(f"{source}: 'modality' keys must be 0..{len(channels) - 1}, got {list(modality)}")
    raw_labels = d.get("labels")
    if not isinstance(raw_labels, dict) or not raw_labels:
        raise ConversionError(f"{source}: needs a non-empty 'labels' mapping like {{\"0\": \"background\"}}")
    labels: dict[str, int] = {}
    for key, label_name in raw_labels.items():
        try:
            value = int(key)
        except ValueError as exc:
            raise ConversionError(f"{source}: 'labels' keys must be label values, got {key!r}") from exc
        label_name = "background" if value == 0 else str(label_name)
        if label_name in labels:
            raise ConversionError(f"{source}: label name {label_name!r} is used for values "
                                  f"{labels[label_name]} and {value}")
        labels[label_name] = value
    if labels.get("background") != 0:
        raise ConversionError(f"{source}: 'labels' must contain value 0 (background)")
    return channels, dict(sorted(labels.items(), key=lambda kv: kv[1]))


def _by_stem(files: list[Path]) -> dict[str, Path]:
    return {split_ending(p)[0]: p for p in files}


def msd_plan(src: str | Path, name: str | None = None) -> ConversionPlan:
    src = Path(src)
    task_id, task_name = task_id_and_name(src)
    name = name or task_name
    if name is None:
        raise ConversionError(f"{src}: a Decathlon task folder is named TaskXX_Name; rename it or pass --name")
    json_path = src / "dataset.json"
    if not json_path.is_file():
        raise ConversionError(f"{json_path}: not found (every Decathlon task ships one)")
    try:
        meta = json.loads(json_path.read_text())
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{json_path}: not valid JSON ({exc})") from exc
    channels, labels = translate_dataset_json(meta, json_path)

    img_dir, lab_dir, test_dir = src / "imagesTr", src / "labelsTr", src / "imagesTs"
    image_files, label_files = list_files(img_dir), list_files(lab_dir)
    test_files = list_files(test_dir) if test_dir.is_dir() else []
    ending = common_ending(image_files + label_files + test_files, str(src))
    images, label_map, tests = _by_stem(image_files), _by_stem(label_files), _by_stem(test_files)
    match_pairs(images, label_map, img_dir, lab_dir)
    dataset = DatasetJson(
        channel_names=channels,
        labels=labels,
        file_ending=ending,
        num_training=len(images),
        name=name,
        description=str(meta.get("description", "")),
        extra={"converted_from": f"Medical Segmentation Decathlon {src.name}",
               **{k: meta[k] for k in KEPT_KEYS if k in meta}},
    )
    return ConversionPlan(
        name=name,
        dataset=dataset,
        training=[CaseSpec(c, (images[c],), label_map[c]) for c in sorted(images)],
        test=[CaseSpec(c, (tests[c],)) for c in sorted(tests)],
        source=src,
        preferred_id=task_id,
    )
