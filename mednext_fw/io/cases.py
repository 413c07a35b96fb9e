"""Listing cases in an nnU-Net raw layout folder (``CASE_0000.ext`` images, ``CASE.ext`` labels)."""
from __future__ import annotations

import re
from pathlib import Path

_CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<ch>\d{4})$")


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
        m = _CHANNEL_RE.match(stem)
        if m:
            out.setdefault(m.group("case"), {})[int(m.group("ch"))] = p
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
