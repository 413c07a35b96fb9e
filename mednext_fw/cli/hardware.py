"""The hardware flags every command shares: ``--device`` and ``--threads`` (their defaults: ``mednext_fw.devices``).

``-np`` / ``--num-workers`` (worker processes) stay with each command, whose workers differ
(augmentation, export, preprocessing, evaluation); their defaults come from the same CPU share.
"""
from __future__ import annotations

import argparse

from mednext_fw.devices import DEVICE_CHOICES
from mednext_fw.errors import UserError


def add_device_flag(p, default: str = "auto") -> None:
    p.add_argument("--device", default=default, choices=list(DEVICE_CHOICES),
                   help=f"auto (CUDA, then MPS, then CPU), cpu, cuda or mps (default {default})")


def add_threads_flag(p) -> None:
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of this process for torch and SimpleITK (worker processes use one each; "
                        "default: the cores this process may use - affinity and cgroup quota - left idle by "
                        "other processes and its own workers)")


class FlagError(UserError, ValueError):
    """A hardware flag out of range (reported in one line)."""


def check_counts(args: argparse.Namespace, *names: str) -> None:
    """``--threads`` >= 1 and worker counts >= 0, as a usage error."""
    if getattr(args, "threads", None) is not None and args.threads < 1:
        raise FlagError(f"--threads must be >= 1, got {args.threads}")
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise FlagError(f"-np/--num-workers must be >= 0, got {value}")
