"""Durations as users type them (``90s``, ``20m``, ``12h``, ``1h30m``) and as logs print them."""
from __future__ import annotations

import math
import re

from mednext_fw.errors import UserError


class DurationError(UserError, ValueError):
    """An unreadable or non-positive duration."""


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | float | int) -> float:
    """``90s``, ``20m``, ``12h``, ``1h30m``, ``2d`` or plain seconds -> seconds."""
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        s = str(text).strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", s):
            seconds = float(s)
        else:
            parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", s)
            if not parts or "".join(n + u for n, u in parts) != s:
                raise DurationError(f"cannot read the duration '{text}' (examples: 90s, 20m, 12h, 1h30m)")
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise DurationError(f"a duration must be positive, got '{text}'")
    return seconds


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return f"{seconds / 86400:.1f} days"
