"""Which intensity normalisation each channel gets: a planning decision, recorded in the plans.

Preprocessing applies the scheme the plans name (``preprocessing.normalization``); the choice itself
is made here, from the channel's name in dataset.json, with nnU-Net's mapping.
"""
from __future__ import annotations

SCHEMES = ("ct", "zscore", "none", "rescale_0_1", "rgb_0_1")
_NAME_TO_SCHEME = {"ct": "ct", "nonorm": "none", "none": "none", "noNorm": "none", "zscore": "zscore",
                   "rescale_to_0_1": "rescale_0_1", "rescale_0_1": "rescale_0_1",
                   "rgb_to_0_1": "rgb_0_1", "rgb_0_1": "rgb_0_1"}


def scheme_for_channel(channel_name: str) -> str:
    """nnU-Net's mapping (case-insensitive); every other name (T1, T2, MRI, ...) gets per-image z-score."""
    return _NAME_TO_SCHEME.get(channel_name.strip().lower(), "zscore")
