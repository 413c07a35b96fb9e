"""2d configurations of 3D data train on single slices (nnU-Net's 2D loader).

A sample takes one slice along the first (preprocessed) axis: for a foreground-forced sample the
slice of a stored foreground voxel of a random present class, otherwise a uniformly random slice.
The in-plane patch is then chosen as for any patch, around that voxel when forced.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def pick_slice(data: np.ndarray, seg: np.ndarray, class_locations: dict[str, list[list[int]]] | None,
               rng: np.random.RandomState, ignore_keys: Sequence[str] = ()
               ) -> tuple[np.ndarray, np.ndarray, dict[str, list[list[int]]] | None]:
    """``(C, Z, Y, X)`` arrays -> one ``(C, Y, X)`` slice of each, with that slice's in-plane locations."""
    present = [k for k, v in (class_locations or {}).items() if len(v) > 0 and k not in ignore_keys]
    if not present:
        z = int(rng.randint(data.shape[1]))
        return data[:, z], seg[:, z], None
    key = present[rng.randint(len(present))]
    locs = class_locations[key]
    z = int(locs[rng.randint(len(locs))][0])
    in_plane = [list(loc[1:]) for loc in locs if int(loc[0]) == z]
    return data[:, z], seg[:, z], {key: in_plane}
