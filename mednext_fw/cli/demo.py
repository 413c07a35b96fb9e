"""``mednext_demo``: the whole pipeline on the embedded real data, sized for a 2-core CPU."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mednext_fw.cli.common import run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mednext_demo",
        description="Plan, preprocess, train, predict and evaluate on the embedded demo data "
                    "(brain-mask segmentation; or the 2D plug-ins with --classification).",
    )
    p.add_argument("--workdir", type=Path, default=Path("mednext_demo"),
                   help="folder for the raw/preprocessed/results roots and outputs (default: ./mednext_demo)")
    p.add_argument("--classification", action="store_true",
                   help="run the 2D classification plug-ins (X-ray MoE and HoViT) on MRI view planes instead")
    p.add_argument("--time-budget", default=None, metavar="DURATION",
                   help="segmentation training time (default 3m; the schedule is fitted to it)")
    p.add_argument("--epochs", type=int, default=None, help="at most this many epochs (classification: exactly)")
    p.add_argument("--iters-per-epoch", type=int, default=None, help="at most this many iterations per epoch")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("mednext_demo", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from mednext_fw.demo import pipeline

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.classification:
        budget = pipeline.ClassificationBudget()
        if args.epochs:
            budget.epochs = args.epochs
        pipeline.run_classification(workdir, budget)
    else:
        budget = pipeline.DemoBudget()
        if args.epochs:
            budget.epochs = args.epochs
        if args.iters_per_epoch:
            budget.iters_per_epoch = args.iters_per_epoch
        if args.time_budget:
            budget.time_budget = args.time_budget
        pipeline.run_segmentation(workdir, budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
