"""``mednext_install_model model.zip``: verify an exported model and place it under $MEDNEXT_results.

    mednext_install_model MODEL.zip [--results DIR] [--overwrite]

Everything is checked before anything is placed (complete zip, known format version, sha256 of every
file, the network/trainer plug-ins installed); a refusal leaves the results folder untouched. An
installed model is replaced only with ``--overwrite``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mednext_fw.cli.common import run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mednext_install_model", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archive", type=Path, help="a zip written by mednext_export_model")
    p.add_argument("--results", type=Path, help="results root (default: $MEDNEXT_results)")
    p.add_argument("--overwrite", action="store_true", help="replace an installed model of the same name")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mednext_fw import paths
    from mednext_fw.deployment import install_model

    def run() -> None:
        target = install_model(args.archive, args.results or paths.results_root(), args.overwrite)
        print(f"installed {args.archive} -> {target}")

    return run_command("mednext_install_model", run)


if __name__ == "__main__":
    sys.exit(main())
