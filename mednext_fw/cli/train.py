"""``mednext_train CONFIG FOLD``: train one fold from the plans (also ``torchrun ... -m mednext_fw.cli.train``)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mednext_fw.cli.common import add_tta_flag, run_command
from mednext_fw.errors import UsageError
from mednext_fw.cli.hardware import add_device_flag, add_threads_flag, check_counts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mednext_train",
        description="Train one cross-validation fold of a preprocessed dataset. Writes checkpoints, "
                    "training_log.txt, progress.png and the final validation to "
                    "$MEDNEXT_results/Dataset###_Name/<Trainer>__<CONFIG>/fold_<FOLD>/. "
                    "Multi-GPU: torchrun --nproc_per_node N -m mednext_fw.cli.train CONFIG FOLD ...",
    )
    p.add_argument("positional", nargs="+", metavar="[CONFIG] FOLD",
                   help="configuration in plans.json (e.g. 3d_fullres; or give it with -c) and the fold: 0-4 of "
                        "splits_final.json, or 'all' (train on every case)")
    p.add_argument("-c", "--configuration", dest="config_option", metavar="CONFIG",
                   help="the configuration, as -c in the other commands (instead of the first positional)")
    p.add_argument("-d", "--dataset", help="dataset id or name; may be left out when exactly one dataset is "
                                           "preprocessed")
    p.add_argument("-tr", "--trainer", default="MedNeXtTrainer", help="registered trainer (default MedNeXtTrainer)")
    p.add_argument("-m", "--model", choices=["S", "B", "M", "L"], help="MedNeXt variant instead of the plans'")
    p.add_argument("-k", "--kernel-size", type=int, choices=[3, 5], help="kernel size instead of the plans'")
    g = p.add_argument_group("schedule")
    g.add_argument("--epochs", type=int, help="number of epochs (default: the trainer's; MedNeXtTrainer 1000)")
    g.add_argument("--iters-per-epoch", type=int,
                   help="training iterations per epoch (default: the trainer's; MedNeXtTrainer 250)")
    g.add_argument("--val-iters", type=int, help="validation batches per epoch (default: the trainer's; "
                                                 "MedNeXtTrainer 50)")
    g.add_argument("--lr", type=float, help="initial learning rate (default: the trainer's; MedNeXtTrainer 1e-3, "
                                            "poly decay)")
    g.add_argument("--seed", type=int, default=None, help="seed for python, numpy, torch and the loaders")
    g.add_argument("--time-budget", metavar="DURATION",
                   help="wall time for the whole run, final validation included (e.g. 90s, 20m, 12h, 1h30m): a "
                        "calibration picks epochs x iterations to fit, re-fitted every epoch as the speed drifts; "
                        "--epochs/--iters-per-epoch/--val-iters become upper limits. With --continue the time "
                        "earlier sessions used counts. Default: the plans' time_budget, else none")
    g = p.add_argument_group("initialisation and resume")
    g.add_argument("--continue", dest="continue_training", action="store_true",
                   help="resume from this fold's newest checkpoint (network, optimiser, schedule, logs, RNG)")
    g.add_argument("--upkern-from", metavar="CKPT", help="initialise a kernel-5 MedNeXt from a kernel-3 checkpoint "
                                                         "of the same dataset and fold (UpKern)")
    g.add_argument("--pretrained", metavar="CKPT", help="load every tensor of CKPT whose name and shape match")
    g = p.add_argument_group("hardware")
    add_device_flag(g)
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                   help="autocast dtype (auto: fp16 + GradScaler on CUDA, fp32 elsewhere)")
    g.add_argument("-np", "--num-workers", dest="num_workers", type=int, default=None,
                   help="augmentation worker processes (default $MEDNEXT_n_proc_DA, else from the usable cores; "
                        "0 = in-process)")
    add_threads_flag(g)
    g = p.add_argument_group("plan overrides (recorded in the model folder's plans.json)")
    g.add_argument("--patch-size", type=int, nargs="+", metavar="N", help="patch size, one value per axis")
    g.add_argument("--batch-size", type=int, help="global batch size (split across DDP processes)")
    g.add_argument("--n-channels", type=int, help="MedNeXt base width (32 in the paper)")
    g.add_argument("--network-kwargs", metavar="JSON", help='extra builder arguments, e.g. \'{"block_counts": [1,1,1,1,1,1,1,1,1]}\'')
    g = p.add_argument_group("final validation")
    g.add_argument("--no-final-val", action="store_true", help="skip predicting and scoring the validation cases")
    g.add_argument("--val", dest="val_only", action="store_true",
                   help="only the final validation of this trained fold, no training (nnU-Net's --val), e.g. "
                        "with --npz for ensembling; predictions of the same weights already there are kept")
    g.add_argument("--val-best", "--val_best", dest="val_best", action="store_true",
                   help="with --val: the weights of checkpoint_best.pth instead of checkpoint_final.pth")
    add_tta_flag(g, "in the final validation", old_names=("--no-val-tta",))
    npz = g.add_mutually_exclusive_group()
    npz.add_argument("--npz", dest="npz", action="store_true", default=None,
                     help="also save the validation probabilities (CASE.npz) for ensembling; default: on when "
                          "more than one configuration is planned")
    npz.add_argument("--no-npz", dest="npz", action="store_false", help="do not save validation probabilities")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    return p


def _options(args: argparse.Namespace) -> dict:
    kwargs = {}
    if args.network_kwargs:
        try:
            kwargs = json.loads(args.network_kwargs)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--network-kwargs is not valid JSON ({exc})") from None
        if not isinstance(kwargs, dict):
            raise UsageError("--network-kwargs must be a JSON object")
    if args.n_channels is not None:
        kwargs["n_channels"] = args.n_channels
    for flag in ("upkern_from", "pretrained"):
        value = getattr(args, flag)
        if value is not None and not Path(value).is_file():
            raise UsageError(f"--{flag.replace('_', '-')} {value}: file not found")
    if args.upkern_from and args.pretrained:
        raise UsageError("use either --upkern-from or --pretrained, not both")
    return {"variant": args.model, "kernel_size": args.kernel_size, "patch_size": args.patch_size,
            "batch_size": args.batch_size, "network_kwargs": kwargs, "upkern_from": args.upkern_from,
            "pretrained": args.pretrained}


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    return run_command("mednext_train", lambda: _run(args, started))


def _config_and_fold(args: argparse.Namespace) -> None:
    """``CONFIG FOLD`` (nnU-Net's order) or ``-c CONFIG FOLD`` (the other commands' flag)."""
    pos = list(args.positional)
    if args.config_option is not None:
        pos.insert(0, args.config_option)
    if len(pos) != 2:
        raise UsageError(f"expected CONFIG and FOLD (e.g. '3d_fullres 0' or '-c 3d_fullres 0'), got {pos}")
    args.configuration, args.fold = pos


def _check_validation_flags(args: argparse.Namespace) -> None:
    if args.val_best and not args.val_only:
        raise UsageError("--val-best goes with --val (validate the best checkpoint without training)")
    if args.val_only:
        clash = [flag for flag, on in (("--continue", args.continue_training), ("--no-final-val", args.no_final_val),
                                       ("--upkern-from", args.upkern_from), ("--pretrained", args.pretrained),
                                       ("--time-budget", args.time_budget)) if on]
        if clash:
            raise UsageError(f"--val validates a trained fold without training; drop {', '.join(clash)}")


def _run(args: argparse.Namespace, started: float) -> int:
    _config_and_fold(args)
    if args.fold != "all" and not args.fold.isdigit():
        raise UsageError(f"FOLD must be a fold number (0-4) or 'all', got '{args.fold}'")
    from mednext_fw.trainers.launch import TrainRequest, build_trainer

    check_counts(args, "num_workers")
    _check_validation_flags(args)
    request = TrainRequest(
        configuration=args.configuration, fold=args.fold, dataset=args.dataset, trainer=args.trainer,
        options=_options(args), schedule={"num_epochs": args.epochs, "iters_per_epoch": args.iters_per_epoch,
                                          "val_iters": args.val_iters, "lr": args.lr},
        device=args.device, precision=args.precision, seed=args.seed, num_workers=args.num_workers,
        threads=args.threads, time_budget=args.time_budget, final_validation=not args.no_final_val,
        final_validation_tta=not args.disable_tta, save_probabilities=args.npz,
        continue_training=args.continue_training, progress_bar=not args.no_progress)
    trainer = None
    try:
        trainer = build_trainer(request, started)
        if args.val_only:
            trainer.validate_only("checkpoint_best.pth" if args.val_best else "checkpoint_final.pth")
        else:
            trainer.run()
    except KeyboardInterrupt:
        where = trainer.output_dir if trainer is not None else "the fold folder"
        again = "the same command resumes the validation" if args.val_only else \
            f"checkpoint_latest.pth is in {where}. Resume with --continue"
        print(f"\nmednext_train: interrupted; {again}.", file=sys.stderr)
        return 130
    finally:
        if trainer is not None:
            trainer.dist.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
