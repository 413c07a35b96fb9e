"""``create_mednext``: the S/B/M/L builder, registered in ``NETWORKS`` on import.

Names: ``mednext`` (takes ``variant=``) and ``mednext_S`` / ``mednext_B`` / ``mednext_M`` /
``mednext_L``. Overrides (keyword arguments) replace single fields of the variant: ``n_channels``,
``exp_r`` (int or 9 values), ``block_counts`` (9 values), ``down_exp_r`` (4 values; MONAI's layout),
``residual``, ``residual_up_down``.
"""
from __future__ import annotations

from typing import Sequence

from mednext_fw.network_architectures.mednext.configs import get_variant
from mednext_fw.network_architectures.mednext.model import MedNeXt, MedNeXtArch
from mednext_fw.network_architectures.registry import NETWORKS

_OVERRIDES = ("n_channels", "exp_r", "block_counts", "down_exp_r", "residual", "residual_up_down")


def _nine(value: int | Sequence[int], name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * 9
    value = tuple(int(v) for v in value)
    if len(value) != 9:
        raise ValueError(f"MedNeXt {name} needs 9 entries [enc0..3, bottleneck, dec3..0], got {len(value)}")
    return value


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


def create_mednext(variant: str, in_channels: int, num_classes: int, kernel_size: int = 3,
                   deep_supervision: bool = False, dim: int | str = 3, checkpointing: bool | None = None,
                   norm: str = "group", grn: bool = False, **overrides) -> MedNeXt:
    """Build MedNeXt-``variant`` (S/B/M/L). ``checkpointing=None`` uses the variant's default (on for M, L)."""
    unknown = sorted(set(overrides) - set(_OVERRIDES))
    if unknown:
        raise TypeError(f"create_mednext got unknown arguments {unknown}; overrides allowed: {list(_OVERRIDES)}")
    cfg = get_variant(variant)
    down = overrides.get("down_exp_r")
    arch = MedNeXtArch(
        in_channels=int(in_channels),
        num_classes=int(num_classes),
        n_channels=int(overrides.get("n_channels", cfg.n_channels)),
        exp_r=_nine(overrides.get("exp_r", cfg.exp_r), "exp_r"),
        block_counts=_nine(overrides.get("block_counts", cfg.block_counts), "block_counts"),
        kernel_size=int(kernel_size),
        dim=_dim(dim),
        deep_supervision=bool(deep_supervision),
        norm=norm,
        grn=bool(grn),
        residual=bool(overrides.get("residual", True)),
        residual_up_down=bool(overrides.get("residual_up_down", True)),
        down_exp_r=None if down is None else tuple(int(v) for v in down),
        checkpointing=cfg.checkpointing if checkpointing is None else bool(checkpointing),
    )
    return MedNeXt(arch)


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
