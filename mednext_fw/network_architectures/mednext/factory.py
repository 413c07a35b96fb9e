"""``create_mednext``: the S/B/M/L builder, registered in ``NETWORKS`` on import.

Names: ``mednext`` (takes ``variant=``) and ``mednext_S`` / ``mednext_B`` / ``mednext_M`` /
``mednext_L``. Overrides (keyword arguments) replace single fields of the variant: ``n_channels``,
``exp_r`` (int or 2n+1 values), ``block_counts`` (2n+1 values), ``down_exp_r`` (n values; MONAI's
layout), ``residual``, ``residual_up_down``.

Topology: ``strides`` (per down-sampling stage, per axis, 1 or 2) and ``kernel_sizes`` (per level,
per axis) as planned (``plans.json`` ``network.strides`` / ``network.kernel_sizes``); ``n = len(strides)``
down-samplings. Without them the network is the reference's (4 x stride 2, ``kernel_size`` everywhere).
A variant's 9-entry lists are cut to fewer levels by ``topology.stage_lists``.
"""
from __future__ import annotations

from typing import Sequence

from mednext_fw.network_architectures.mednext.configs import get_variant
from mednext_fw.network_architectures.mednext.model import NUM_LEVELS, MedNeXt, MedNeXtArch
from mednext_fw.network_architectures.mednext.topology import stage_lists
from mednext_fw.network_architectures.registry import NETWORKS

_OVERRIDES = ("n_channels", "exp_r", "block_counts", "down_exp_r", "residual", "residual_up_down")


def _per_stage(value: int | Sequence[int], name: str, n_down: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * (2 * n_down + 1)
    return stage_lists(value, n_down, name)


def _nested(value) -> tuple[tuple[int, ...], ...] | None:
    return None if value is None else tuple(tuple(int(v) for v in row) for row in value)


def _dim(dim: int | str) -> int:
    if isinstance(dim, str):  # accept the reference's '2d' / '3d'
        dim = dim.lower().rstrip("d")
    try:
        value = int(dim)
    except ValueError:
        value = -1
    if value not in (2, 3):
        raise ValueError(f"MedNeXt dim must be 2 or 3, got {dim!r}")
    return value


def mednext_arch(variant: str, in_channels: int, num_classes: int, kernel_size: int | None = None,
                 deep_supervision: bool = False, dim: int | str = 3, checkpointing: bool | None = None,
                 norm: str = "group", grn: bool = False, strides: Sequence[Sequence[int]] | None = None,
                 kernel_sizes: Sequence[Sequence[int]] | None = None, **overrides) -> MedNeXtArch:
    """The architecture ``create_mednext`` builds, without building it (cheap: the planner's memory
    estimate asks it). ``kernel_size=None``: the largest of ``kernel_sizes``, else 3."""
    unknown = sorted(set(overrides) - set(_OVERRIDES))
    if unknown:
        raise TypeError(f"create_mednext got unknown arguments {unknown}; overrides allowed: {list(_OVERRIDES)}")
    cfg = get_variant(variant)
    strides, kernel_sizes = _nested(strides), _nested(kernel_sizes)
    n_down = len(strides) if strides is not None else len(kernel_sizes) - 1 if kernel_sizes else NUM_LEVELS
    if kernel_size is None:
        kernel_size = max(max(k) for k in kernel_sizes) if kernel_sizes else 3
    down = overrides.get("down_exp_r")
    return MedNeXtArch(
        in_channels=int(in_channels),
        num_classes=int(num_classes),
        n_channels=int(overrides.get("n_channels", cfg.n_channels)),
        exp_r=_per_stage(overrides.get("exp_r", cfg.exp_r), "exp_r", n_down),
        block_counts=_per_stage(overrides.get("block_counts", cfg.block_counts), "block_counts", n_down),
        kernel_size=int(kernel_size),
        dim=_dim(dim),
        deep_supervision=bool(deep_supervision),
        norm=norm,
        grn=bool(grn),
        residual=bool(overrides.get("residual", True)),
        residual_up_down=bool(overrides.get("residual_up_down", True)),
        down_exp_r=None if down is None else tuple(int(v) for v in down),
        checkpointing=cfg.checkpointing if checkpointing is None else bool(checkpointing),
        strides=strides,
        kernel_sizes=kernel_sizes,
    )


def create_mednext(variant: str, in_channels: int, num_classes: int, kernel_size: int | None = None,
                   deep_supervision: bool = False, dim: int | str = 3, checkpointing: bool | None = None,
                   norm: str = "group", grn: bool = False, strides: Sequence[Sequence[int]] | None = None,
                   kernel_sizes: Sequence[Sequence[int]] | None = None, **overrides) -> MedNeXt:
    """Build MedNeXt-``variant`` (S/B/M/L). ``checkpointing=None`` uses the variant's default (on for M, L)."""
    return MedNeXt(mednext_arch(variant, in_channels, num_classes, kernel_size, deep_supervision, dim,
                                checkpointing, norm, grn, strides, kernel_sizes, **overrides))


@NETWORKS.register("mednext")
def build_mednext(variant: str = "S", in_channels: int = 1, num_classes: int = 2, **kwargs) -> MedNeXt:
    return create_mednext(variant, in_channels, num_classes, **kwargs)


def _variant_builder(variant: str):
    def build(in_channels: int = 1, num_classes: int = 2, **kwargs) -> MedNeXt:
        return create_mednext(variant, in_channels, num_classes, **kwargs)

    build.__name__ = f"build_mednext_{variant}"
    build.__doc__ = f"MedNeXt-{variant}; see ``create_mednext``."
    return build


for _v in ("S", "B", "M", "L"):
    NETWORKS.add(f"mednext_{_v}", _variant_builder(_v))
