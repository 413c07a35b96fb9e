"""MedNeXt compound-scaling variants (the reference's S/B/M/L).

Lists have 9 entries indexed [enc0, enc1, enc2, enc3, bottleneck, dec3, dec2, dec1, dec0].
Shared by the network builder and the planner's memory model, so both agree on the sizes.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MedNeXtConfig:
    n_channels: int
    exp_r: tuple[int, ...]
    block_counts: tuple[int, ...]
    checkpointing: bool  # the reference checkpoints M and L to fit 128^3 patches


MEDNEXT_VARIANTS: dict[str, MedNeXtConfig] = {
    "S": MedNeXtConfig(32, (2,) * 9, (2,) * 9, False),
    "B": MedNeXtConfig(32, (2, 3, 4, 4, 4, 4, 4, 3, 2), (2,) * 9, False),
    "M": MedNeXtConfig(32, (2, 3, 4, 4, 4, 4, 4, 3, 2), (3, 4, 4, 4, 4, 4, 4, 4, 3), True),
    "L": MedNeXtConfig(32, (3, 4, 8, 8, 8, 8, 8, 4, 3), (3, 4, 8, 8, 8, 8, 8, 4, 3), True),
}


def get_variant(name: str) -> MedNeXtConfig:
    try:
        return MEDNEXT_VARIANTS[name.upper()]
    except KeyError:
        raise ValueError(f"Unknown MedNeXt variant '{name}'; choose one of {sorted(MEDNEXT_VARIANTS)}") from None
