"""UpKern: initialise a large-kernel MedNeXt (e.g. k5) from a trained small-kernel one (k3).

Every depthwise kernel (``*.dw.weight``) whose spatial size differs is resized with trilinear
(3D) / bilinear (2D) interpolation, ``align_corners=False``, and not rescaled (the reference's
rule: a 5^3 kernel then sums to about 4.6x its 3^3 source, so outputs differ from the source
network's). Every other tensor must have the same shape and is copied. Width, input channels and
class count must match; otherwise the error says which tensor differs and why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from mednext_fw.errors import UserError


class UpKernError(UserError, ValueError):
    pass


@dataclass
class UpKernReport:
    interpolated: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # kept their initialisation (strict=False only)


def _is_depthwise_kernel(key: str, value: torch.Tensor) -> bool:
    return key.endswith("dw.weight") and value.dim() in (4, 5) and value.shape[1] == 1


def _explain(key: str, src: torch.Tensor, dst: torch.Tensor) -> str:
    if key == "stem.weight":
        return (f"'{key}': source {tuple(src.shape)} vs target {tuple(dst.shape)}; the networks differ in width "
                f"(n_channels) or input channels")
    if key.startswith("heads."):
        return (f"'{key}': source {tuple(src.shape)} vs target {tuple(dst.shape)}; the networks differ in the "
                f"number of classes (UpKern needs the same task)")
    return (f"'{key}': source {tuple(src.shape)} vs target {tuple(dst.shape)}; UpKern only resizes depthwise "
            f"kernels, so width, expansion ratios and block counts must match")


def upkern_state_dict(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                      strict: bool = True) -> tuple[dict, UpKernReport]:
    """New state dict shaped like ``target`` with values taken from ``source`` (both our key names)."""
    report = UpKernReport()
    out = {}
    for key, dst in target.items():
        if key not in source:
            if strict:
                raise UpKernError(f"UpKern: the source network has no tensor '{key}' (built with different "
                                  f"deep_supervision, grn or block counts?); pass strict=False to keep its init")
            report.missing.append(key)
            out[key] = dst
            continue
        src = source[key]
        if src.shape == dst.shape:
            out[key] = src.detach().clone().to(dst.dtype)
            report.copied.append(key)
        elif _is_depthwise_kernel(key, src) and src.shape[:2] == dst.shape[:2] and src.dim() == dst.dim():
            mode = "trilinear" if src.dim() == 5 else "bilinear"
            resized = F.interpolate(src.detach().float(), size=tuple(dst.shape[2:]), mode=mode, align_corners=False)
            out[key] = resized.to(dst.dtype)
            report.interpolated.append(key)
        else:
            raise UpKernError("UpKern: " + _explain(key, src, dst))
    return out, report


def upkern_init(target: nn.Module, source: nn.Module | Mapping[str, torch.Tensor], strict: bool = True) -> UpKernReport:
    """Load ``source`` (a trained network or its state dict) into ``target`` with kernels resized in place."""
    src_state = source.state_dict() if isinstance(source, nn.Module) else source
    new_state, report = upkern_state_dict(src_state, target.state_dict(), strict=strict)
    target.load_state_dict(new_state)
    return report
