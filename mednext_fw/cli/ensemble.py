"""``mednext_ensemble -i DIR1 DIR2 ... -o OUT``: average saved probabilities into one prediction.

Each ``-i`` folder holds ``CASE<ending>`` label maps with ``CASE.npz`` probabilities (from
``mednext_predict --save-probabilities`` or a final validation trained with ``--npz``), all with
the same cases. Output label maps keep the inputs' geometry and file format; a re-run skips
finished cases.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mednext_fw.cli.common import run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mednext_ensemble", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("-i", dest="inputs", nargs="+", type=Path, required=True,
                   help="two or more prediction folders with CASE.npz probabilities")
    p.add_argument("-o", dest="output", type=Path, required=True, help="output folder (created)")
    p.add_argument("--dataset-json", type=Path, default=None,
                   help="dataset.json for labels/regions and file ending (default: the one in the first "
                        "input folder or its model folder)")
    p.add_argument("--save-probabilities", action="store_true", help="also write the averaged CASE.npz")
    p.add_argument("-np", dest="num_processes", type=int, default=0,
                   help="worker processes (default 0: in this process)")
    p.add_argument("--overwrite", action="store_true", help="redo cases whose output exists")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mednext_fw.inference.ensemble import ensemble_folders
    from mednext_fw.io.dataset_json import DatasetJson

    def run() -> None:
        dataset = DatasetJson.load(args.dataset_json) if args.dataset_json else None
        outputs = ensemble_folders(args.inputs, args.output, dataset, args.save_probabilities,
                                   max(0, args.num_processes), args.overwrite)
        print(f"{len(outputs)} ensembled prediction(s) in {args.output}")

    return run_command("mednext_ensemble", run)


if __name__ == "__main__":
    sys.exit(main())
