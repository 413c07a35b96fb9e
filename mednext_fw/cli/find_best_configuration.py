"""``mednext_find_best_configuration -d DATASET``: choose the best configuration or ensemble on the
cross-validation and write the inference instructions.

Scores every trained configuration (``-c``, default: every planned one that is trained) of every
trainer (``-tr``) and every ensemble of two or more of them on the folds ``-f`` by foreground mean
Dice (NSD reported too), decides the postprocessing of the winner, and writes
``$MEDNEXT_results/<dataset>/inference_information.json`` and ``inference_instructions.txt``.
Ensembles need the validation probabilities (``mednext_train ... --npz``, the default when several
configurations are planned).
"""
from __future__ import annotations

import argparse
import sys

from mednext_fw.cli.common import run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mednext_find_best_configuration",
                                description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-d", dest="dataset", required=True, help="dataset id or name")
    p.add_argument("-c", dest="configs", nargs="+", default=None,
                   help="configurations to compare (default: every planned configuration that is trained)")
    p.add_argument("-tr", dest="trainers", nargs="+", default=["MedNeXtTrainer"],
                   help="trainers (model folder prefixes) to compare (default MedNeXtTrainer)")
    p.add_argument("-f", dest="folds", nargs="+", default=["0", "1", "2", "3", "4"],
                   help="cross-validation folds every model must have (default 0 1 2 3 4)")
    p.add_argument("--disable-ensembling", action="store_true", help="compare single configurations only")
    p.add_argument("-np", dest="num_processes", type=int, default=None,
                   help="evaluation worker processes (default min(4, CPUs))")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("mednext_find_best_configuration", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mednext_fw.selection import find_best_configuration

    info = find_best_configuration(args.dataset, args.configs, args.trainers, args.folds,
                                   not args.disable_ensembling, args.num_processes)
    print(Path(info["instructions_file"]).read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
