"""``mednext_predict``: predict new images with a trained model; or decide its postprocessing.

    mednext_predict -i IMAGES -o OUTPUT [-d DATASET] [-c CONFIG] [-tr TRAINER] [-f FOLDS ...]
    mednext_predict -i IMAGES -o OUTPUT -m MODEL_FOLDER_OR_ZIP [--backend auto|torch|openvino|onnxruntime]
    mednext_predict --determine-postprocessing [-d DATASET] [-c CONFIG] [-tr TRAINER]

With a single trained model under $MEDNEXT_results, ``-i`` and ``-o`` suffice. Inputs are named as in
the raw layout (``CASE_0000.nii.gz``, one file per channel); single-channel models also accept
``CASE.nii.gz``. Every input is checked before anything is predicted, so a bad file stops the run
with a message naming it and nothing written.

``-m`` predicts from any model folder or exported zip (``mednext_export_model``) without environment
variables. ``--backend`` chooses where the network's forward runs (``auto``: OpenVINO on a CPU for
MedNeXt jobs long enough to repay its set-up, when installed; torch otherwise); everything else is
the same code. ``--num-parts N
--part-id K`` predicts part K of N (cases by name, round-robin) so N processes can share one output folder.

``--determine-postprocessing`` compares the cross-validation predictions (``fold_k/validation``)
with the references in ``$MEDNEXT_preprocessed/<dataset>/gt_segmentations`` and writes
``postprocessing.json`` into the model folder; later predictions apply it (``--no-postprocessing``
turns that off).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mednext_fw.cli.common import add_tta_flag, run_command
from mednext_fw.cli.hardware import add_device_flag, add_threads_flag, check_counts
from mednext_fw.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mednext_predict", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", dest="input", type=Path, help="folder with CASE_0000<ending> (and further channel) files")
    p.add_argument("-o", dest="output", type=Path, help="output folder (created; must differ from -i)")
    p.add_argument("-d", dest="dataset", help="dataset id or name (default: the only one with a trained model)")
    p.add_argument("-c", dest="config", help="configuration, e.g. 3d_fullres (default: the only one trained)")
    p.add_argument("-tr", dest="trainer", help="trainer name (default: the only one trained, else MedNeXtTrainer)")
    p.add_argument("-m", dest="model", type=Path, help="model folder or exported .zip (instead of -d/-c/-tr)")
    p.add_argument("-f", dest="folds", nargs="+",
                   help="folds to ensemble (default: every fold 0-4 with the checkpoint, else 'all')")
    p.add_argument("-chk", dest="checkpoint", choices=["final", "best", "latest"],
                   help="default: final (an exported model: the checkpoint it was exported with)")
    p.add_argument("--step-size", type=float, default=0.5, help="tile stride as a fraction of the patch (0.5)")
    add_tta_flag(p)
    p.add_argument("--save-probabilities", action="store_true", help="also write CASE.npz (key 'probabilities')")
    add_device_flag(p)
    add_threads_flag(p)
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "openvino", "onnxruntime"],
                   help="runtime of the network's forward (auto: OpenVINO for MedNeXt jobs on a CPU that repay "
                        "its set-up, when installed; else torch)")
    p.add_argument("--num-parts", type=int, default=1, help="split the inputs into N parts (by name) ...")
    p.add_argument("--part-id", type=int, default=0, help="... and predict part K (0-based) of them")
    p.add_argument("--overwrite", action="store_true", help="re-predict cases whose output exists")
    p.add_argument("-np", "--num-workers", "--num-processes", dest="num_export_workers", type=int, default=None,
                   help="worker processes (here: resampling and writing the outputs; 0: in the main process; "
                        "default: 2, at most the usable cores)")
    p.add_argument("--no-postprocessing", action="store_true", help="ignore the model's postprocessing.json")
    p.add_argument("--determine-postprocessing", action="store_true",
                   help="decide keep-largest-component rules on the cross-validation results and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("mednext_predict", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from mednext_fw.devices import resolve_device_type, usable_cores, use_threads
    from mednext_fw.deployment import exported_checkpoint, open_model
    from mednext_fw.inference.model_folder import resolve_model_folder
    from mednext_fw.inference.parts import check_part

    check_counts(args, "num_export_workers")
    if args.num_export_workers is None:
        args.num_export_workers = min(2, usable_cores())
    # export workers wait for the network most of the time, so the math gets every idle core
    use_threads(resolve_device_type(args.device), args.threads, workers=0)
    try:
        check_part(args.num_parts, args.part_id)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.model is not None:
        if args.dataset or args.config or args.trainer:
            raise UsageError("give either -m MODEL or -d/-c/-tr, not both")
        if args.determine_postprocessing and not args.model.is_dir():
            raise UsageError(f"-m {args.model}: --determine-postprocessing writes into a model folder, not a zip")
    path = args.model or resolve_model_folder(args.dataset, args.config, args.trainer, args.checkpoint or "final")
    with open_model(path) as folder:
        args.checkpoint = args.checkpoint or exported_checkpoint(folder.path) or "final"
        return _run_model(args, folder)


def _run_model(args: argparse.Namespace, folder) -> int:
    if not args.determine_postprocessing and (args.input is None or args.output is None):
        raise UsageError("-i INPUT and -o OUTPUT are required (or --determine-postprocessing)")
    if not 0 < args.step_size <= 1:
        raise UsageError(f"--step-size must be in (0, 1], got {args.step_size}")
    if folder.dataset.task == "classification" and not args.determine_postprocessing:
        from mednext_fw.inference.classification import predict_to_csv

        csv_file = predict_to_csv(folder, [args.input], args.output, args.folds, args.checkpoint, args.device,
                                  backend=args.backend, part=(args.num_parts, args.part_id))
        print(f"{len(csv_file.read_text().splitlines()) - 1} image(s) classified -> {csv_file}")
        return 0
    if folder.dataset.task != "segmentation":
        raise UsageError(f"{folder.path}: a {folder.dataset.task} model; this command predicts segmentation models")
    if args.determine_postprocessing:
        return _determine_postprocessing(folder)
    return _predict_segmentation(args, folder)


def _predict_segmentation(args: argparse.Namespace, folder) -> int:
    from mednext_fw.inference.run import PredictOptions, predict_folder

    if args.input.resolve() == args.output.resolve():
        raise UsageError(f"-o {args.output} must differ from -i (outputs would overwrite or mix with inputs)")
    opts = PredictOptions(folds=args.folds, checkpoint=args.checkpoint, device=args.device,
                          tta=not args.disable_tta, step_size=args.step_size, backend=args.backend,
                          postprocessing=not args.no_postprocessing, overwrite=args.overwrite,
                          save_probabilities=args.save_probabilities, num_export_workers=args.num_export_workers,
                          num_parts=args.num_parts, part_id=args.part_id)
    outputs = predict_folder(folder, args.input, args.output, opts,
                             announce=lambda line: print(f"mednext_predict: {line}", flush=True))
    print(f"{len(outputs)} prediction(s) in {args.output}")
    return 0


def _determine_postprocessing(folder) -> int:
    from mednext_fw import paths
    from mednext_fw.inference.postprocessing import POSTPROCESSING_FILE, determine_postprocessing

    ref = paths.preprocessed_root() / folder.path.parent.name / "gt_segmentations"
    if not ref.is_dir():
        raise UsageError(f"{ref}: reference segmentations not found (run mednext_plan_and_preprocess)")
    preds = sorted(p for p in folder.path.glob("fold_*/validation") if p.is_dir())
    if not preds:
        raise UsageError(f"{folder.path}: no fold_*/validation folder; run the training's final validation first")
    rules = determine_postprocessing(ref, preds, folder.dataset, folder.path / POSTPROCESSING_FILE)
    print(f"postprocessing: largest foreground component={rules.largest_foreground_component}, "
          f"largest component per class={rules.largest_component_per_class}; Dice {rules.dice_before} -> "
          f"{rules.dice_after}; written to {folder.path / POSTPROCESSING_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
