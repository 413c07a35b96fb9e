"""Initialising a new run from another run's checkpoint: UpKern (k3 -> k5) or a shape-matching load."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn

from mednext_fw.errors import UserError
from mednext_fw.trainers import checkpoint as ckpt_io


class WeightInitError(UserError, ValueError):
    pass


def init_from_pretrained(network: nn.Module, path: Path, log: Callable[[str], None]) -> dict[str, list[str]]:
    """Non-strict: copy every tensor whose name and shape match; report the rest."""
    ckpt = ckpt_io.load_checkpoint(path)
    report = ckpt_io.load_matching_weights(network, ckpt["network_state"])
    if not report["loaded"]:
        raise WeightInitError(f"{path}: no tensor matches this network by name and shape; nothing was loaded")
    log(f"Pretrained weights from {path}: loaded {len(report['loaded'])} tensors, "
        f"{len(report['shape_mismatch'])} skipped for shape, {len(report['missing'])} missing in the file "
        f"(kept at init), {len(report['unexpected'])} extra in the file (ignored)")
    for line in report["shape_mismatch"][:20]:
        log(f"  shape mismatch, kept at init: {line}")
    return report


def init_from_upkern(network: nn.Module, path: Path, builder: dict[str, Any], log: Callable[[str], None]) -> None:
    """Initialise a large-kernel MedNeXt from a small-kernel checkpoint of the same dataset and fold."""
    from mednext_fw.network_architectures.mednext.upkern import UpKernError, upkern_init

    ckpt = ckpt_io.load_checkpoint(path)
    src_builder = ckpt.get("network_builder", {})
    if src_builder.get("name") != builder["name"]:
        raise WeightInitError(f"{path}: UpKern source network is '{src_builder.get('name')}', "
                              f"this run trains '{builder['name']}'")
    src_kwargs, kwargs = src_builder.get("kwargs", {}), builder["kwargs"]
    for key in ("in_channels", "num_classes", "variant", "dim"):
        if key in src_kwargs and src_kwargs[key] != kwargs.get(key):
            raise WeightInitError(f"{path}: UpKern needs the same {key} (checkpoint {src_kwargs[key]!r}, "
                                  f"this run {kwargs.get(key)!r})")
    try:
        report = upkern_init(network, ckpt_io.strip_prefixes(ckpt["network_state"]))
    except UpKernError as exc:
        raise WeightInitError(f"{path}: {exc}") from exc
    log(f"UpKern from {path} (kernel {src_kwargs.get('kernel_size')} -> {kwargs.get('kernel_size')}): "
        f"{len(report.interpolated)} depthwise kernels interpolated, {len(report.copied)} tensors copied")
