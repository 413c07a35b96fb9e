"""Case and channel file names of the nnU-Net raw layout (``CASE_0000.ext`` images, ``CASE.ext`` labels).

The one owner of the channel-file rule: conversion writes these names, the integrity check and
preprocessing list them, prediction reads them.
"""
from __future__ import annotations

import re
from pathlib import Path

_CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<ch>\d{4})$")


def channel_file_name(case: str, channel: int, file_ending: str) -> str:
    """``CASE_0000.nii.gz``: the file of one channel of one case."""
    return f"{case}_{channel:04d}{file_ending}"


def split_channel(stem: str) -> tuple[str, int] | None:
    """``CASE_0001`` -> (``CASE``, 1); None when the stem carries no 4-digit channel index."""
    m = _CHANNEL_RE.match(stem)
    return (m.group("case"), int(m.group("ch"))) if m else None


def strip_ending(name: str, file_ending: str) -> str | None:
    return name[: -len(file_ending)] if name.endswith(file_ending) else None


def list_image_cases(folder: str | Path, file_ending: str) -> dict[str, dict[int, Path]]:
    """``{case_id: {channel_index: path}}`` for every ``CASE_0000<ending>`` (4-digit channel index) in ``folder``.

    macOS resource forks (``._x``) and hidden files are ignored.
    """
    out: dict[str, dict[int, Path]] = {}
    for p in sorted(Path(folder).iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        stem = strip_ending(p.name, file_ending)
        if stem is None:
            continue
        split = split_channel(stem)
        if split:
            out.setdefault(split[0], {})[split[1]] = p
    return out


def list_label_cases(folder: str | Path, file_ending: str) -> dict[str, Path]:
    out = {}
    for p in sorted(Path(folder).iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        stem = strip_ending(p.name, file_ending)
        if stem is not None:
            out[stem] = p
    return out
