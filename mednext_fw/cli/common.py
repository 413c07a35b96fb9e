"""What every command does the same way: report user errors in one line, keep bugs' tracebacks.

The flag vocabulary shared by the commands (see the README's table):
``-d`` dataset, ``-c`` configuration(s), ``-tr`` trainer, ``-f`` fold(s), ``-np`` worker processes,
``--threads`` CPU threads per process, ``--device``, ``--disable-tta`` (no mirroring test-time augmentation).
Old spellings stay accepted for a while as deprecated aliases that print a warning.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Sequence

from mednext_fw.errors import UserError
from mednext_fw.logs import configure_console


def run_command(prog: str, body: Callable[[], int | None]) -> int:
    """Run ``body``; a ``UserError`` becomes ``prog: error: ...`` on stderr and exit status 1.

    Anything else propagates, so a bug prints its traceback instead of passing for a user mistake.
    """
    configure_console()
    try:
        code = body()
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0 if code is None else int(code)


class _DeprecatedFlag(argparse.Action):
    """``store_true`` under an old name: works, and tells the user the new one."""

    def __init__(self, option_strings: Sequence[str], dest: str, new_name: str, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        self.new_name = new_name

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"{parser.prog}: warning: {option_string} is deprecated, use {self.new_name}", file=sys.stderr)
        setattr(namespace, self.dest, True)


def add_tta_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, where: str = "",
                 old_names: Sequence[str] = ()) -> None:
    """``--disable-tta`` (nnU-Net's name) on every command that predicts; ``dest`` is ``disable_tta``."""
    parser.add_argument("--disable-tta", dest="disable_tta", action="store_true",
                        help=f"no mirroring test-time augmentation {where} (8x faster)".replace("  ", " "))
    for old in old_names:
        parser.add_argument(old, dest="disable_tta", action=_DeprecatedFlag, new_name="--disable-tta")
