"""BTCV (Multi-Atlas Labeling Beyond the Cranial Vault, Synapse "RawData") -> a conversion plan.

Source layout: ``Training/img/img0001.nii.gz``, ``Training/label/label0001.nii.gz`` and
``Testing/img/img0061.nii.gz`` (``SRC`` may also be the folder that contains ``RawData/``).
Case IDs keep the image names (``img0001``); ``label0001`` belongs to ``img0001``.
"""
from __future__ import annotations

from pathlib import Path

from mednext_fw.conversion.common import CaseSpec, ConversionError, ConversionPlan, common_ending, list_files, \
    match_pairs, split_ending
from mednext_fw.io.dataset_json import DatasetJson

# BTCV's label values 1..13, in order.
ORGANS = (
    "spleen", "right kidney", "left kidney", "gallbladder", "esophagus", "liver", "stomach", "aorta",
    "inferior vena cava", "portal and splenic veins", "pancreas", "right adrenal gland", "left adrenal gland",
)
IMAGE_PREFIX, LABEL_PREFIX = "img", "label"


def btcv_labels() -> dict[str, int]:
    return {"background": 0, **{name: i for i, name in enumerate(ORGANS, start=1)}}


def _root(src: Path) -> Path:
    for candidate in (src, src / "RawData"):
        if (candidate / "Training").is_dir():
            return candidate
    raise ConversionError(f"{src}: not a BTCV RawData folder (expected Training/img and Training/label inside)")


def _by_case(files: list[Path], prefix: str, folder: Path) -> dict[str, Path]:
    out = {}
    for p in files:
        stem, _ = split_ending(p)
        if not stem.startswith(prefix) or not stem[len(prefix):]:
            raise ConversionError(f"{p}: unexpected file in {folder} (BTCV names are {prefix}NNNN)")
        out[IMAGE_PREFIX + stem[len(prefix):]] = p
    return out


def btcv_plan(src: str | Path, name: str = "BTCV") -> ConversionPlan:
    root = _root(Path(src))
    img_dir, lab_dir, test_dir = root / "Training" / "img", root / "Training" / "label", root / "Testing" / "img"
    image_files, label_files = list_files(img_dir), list_files(lab_dir)
    test_files = list_files(test_dir) if test_dir.is_dir() else []
    ending = common_ending(image_files + label_files + test_files, str(root))
    images = _by_case(image_files, IMAGE_PREFIX, img_dir)
    labels = _by_case(label_files, LABEL_PREFIX, lab_dir)
    match_pairs(images, labels, img_dir, lab_dir)
    tests = _by_case(test_files, IMAGE_PREFIX, test_dir)
    dataset = DatasetJson(
        channel_names={"0": "CT"},
        labels=btcv_labels(),
        file_ending=ending,
        num_training=len(images),
        name=name,
        description="BTCV: Multi-Atlas Labeling Beyond the Cranial Vault, abdominal CT with 13 organs",
        extra={"converted_from": "BTCV RawData"},
    )
    return ConversionPlan(
        name=name,
        dataset=dataset,
        training=[CaseSpec(c, (images[c],), labels[c]) for c in sorted(images)],
        test=[CaseSpec(c, (tests[c],)) for c in sorted(tests)],
        source=root,
    )
