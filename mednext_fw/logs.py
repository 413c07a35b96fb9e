"""The one logging approach: every message goes through ``logging``; commands show INFO on stdout.

Modules log to ``logging.getLogger(__name__)``; a training run adds its ``training_log.txt`` as a
handler (``trainers.logger``). ``configure_console`` is what every command calls first.
"""
from __future__ import annotations

import logging
import sys


class ConsoleHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time (pytest and notebooks replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def configure_console(level: int = logging.INFO) -> None:
    """Plain ``message`` lines on stdout for the package's loggers (added once, however often called)."""
    pkg = logging.getLogger("mednext_fw")
    if not any(isinstance(h, ConsoleHandler) for h in pkg.handlers):
        handler = ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        pkg.addHandler(handler)
    pkg.setLevel(level)
