"""The cascade configuration, planned whenever ``3d_lowres`` is (nnU-Net's rule).

``3d_cascade_fullres`` is ``3d_fullres`` whose network also sees the ``3d_lowres`` prediction as
one-hot input channels. It trains on the full-resolution preprocessed data (same
``data_identifier``), so it needs no preprocessing of its own.
"""
from __future__ import annotations

from dataclasses import asdict

from mednext_fw.planners.plans import Configuration

LOWRES, FULLRES, CASCADE = "3d_lowres", "3d_fullres", "3d_cascade_fullres"


def add_cascade(configs: dict[str, Configuration], notes: list[str]) -> None:
    if LOWRES not in configs or FULLRES not in configs:
        return
    cascade = Configuration.from_dict(asdict(configs[FULLRES]))
    cascade.name = CASCADE
    cascade.previous_stage = LOWRES
    configs[LOWRES].next_stage = CASCADE
    configs[CASCADE] = cascade
    notes.append(f"{CASCADE}: {FULLRES} plus the {LOWRES} prediction as input channels (trained on the "
                 f"{LOWRES} cross-validation predictions, so every {LOWRES} fold must be trained first)")
