"""The three data roots.

Read at call time (not import time) so tests and the demo can point them elsewhere with
``monkeypatch.setenv`` or ``os.environ``. nnU-Net's variable names are accepted as fallbacks so
users can reuse an existing nnU-Net setup unchanged.
"""
from __future__ import annotations

import os
from pathlib import Path

from mednext_fw.errors import UserError

_ROOTS = {
    "raw": ("MEDNEXT_raw", "nnUNet_raw"),
    "preprocessed": ("MEDNEXT_preprocessed", "nnUNet_preprocessed"),
    "results": ("MEDNEXT_results", "nnUNet_results"),
}


class PathNotSetError(UserError, RuntimeError):
    """A data root was needed but neither of its environment variables is set."""


def _root(kind: str, required: bool) -> Path | None:
    primary, fallback = _ROOTS[kind]
    value = os.environ.get(primary) or os.environ.get(fallback)
    if value:
        return Path(value).expanduser()
    if required:
        raise PathNotSetError(
            f"The {kind} data folder is not set: export {primary}=/path/to/{kind} "
            f"(or the nnU-Net fallback {fallback})."
        )
    return None


def raw_root(required: bool = True) -> Path | None:
    return _root("raw", required)


def preprocessed_root(required: bool = True) -> Path | None:
    return _root("preprocessed", required)


def results_root(required: bool = True) -> Path | None:
    return _root("results", required)
