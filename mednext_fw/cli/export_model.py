"""``mednext_export_model``: write a trained model to one zip (manifest + sha256 of every file).

    mednext_export_model -d DATASET -c CONFIG [-tr TRAINER] [-f FOLDS ...] [-chk final|best] -o model.zip [--onnx]
    mednext_export_model -m MODEL_FOLDER -o model.zip

The zip holds plans.json, dataset.json, postprocessing.json (when decided) and the chosen checkpoints
(weights only). ``--onnx`` adds ``fold_k/network.onnx`` per fold: the network's full-resolution logits
for the plans' patch, batch and spatial sides dynamic. Install elsewhere with ``mednext_install_model``
or predict from the zip directly with ``mednext_predict -m model.zip``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mednext_fw.cli.common import run_command
from mednext_fw.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mednext_export_model", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-d", dest="dataset", help="dataset id or name (default: the only one with a trained model)")
    p.add_argument("-c", dest="config", help="configuration (default: the only one trained)")
    p.add_argument("-tr", dest="trainer", help="trainer name (default: the only one trained, else MedNeXtTrainer)")
    p.add_argument("-m", dest="model", type=Path, help="a model folder instead of -d/-c/-tr")
    p.add_argument("-f", dest="folds", nargs="+", type=int, help="folds to export (default: all with the checkpoint)")
    p.add_argument("-chk", dest="checkpoint", default="final", choices=["final", "best", "latest"])
    p.add_argument("-o", dest="output", type=Path, required=True, help="the .zip to write")
    p.add_argument("--onnx", action="store_true", help="also export each fold's network to ONNX (fold_k/network.onnx)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("mednext_export_model", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from mednext_fw.deployment import export_model
    from mednext_fw.inference.model_folder import ModelFolder, resolve_model_folder

    if args.model is not None and (args.dataset or args.config or args.trainer):
        raise UsageError("give either -m MODEL_FOLDER or -d/-c/-tr, not both")
    path = args.model or resolve_model_folder(args.dataset, args.config, args.trainer, args.checkpoint)
    manifest = export_model(ModelFolder.open(path), args.output, args.folds, args.checkpoint, args.onnx)
    onnx = f", ONNX for input {manifest.onnx['input_shape']}" if manifest.onnx else ""
    print(f"{manifest.model_dir} (folds {manifest.folds}, checkpoint_{manifest.checkpoint}{onnx}) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
