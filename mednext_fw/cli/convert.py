"""``mednext_convert``: BTCV, a Decathlon task, or plain image/label folders -> ``DatasetNNN_Name``."""
from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from mednext_fw import paths
from mednext_fw.cli.common import run_command
from mednext_fw.conversion import btcv_plan, folders_plan, msd_plan, write_dataset
from mednext_fw.errors import UserError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--dataset-id", type=int, default=None,
                   help="dataset ID (1-999); default: the ID of an existing dataset of the same name, else "
                        "the next free one (for Decathlon tasks the task number when free)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="raw data root to write into (default: $MEDNEXT_raw, or $nnUNet_raw)")
    p.add_argument("--link", action="store_true",
                   help="hard-link the source files instead of copying (symbolic links across file systems); "
                        "4D images are always split into new files")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset of the same name and ID")
    p.add_argument("--no-verify", action="store_true", help="skip the integrity check of the result")
    p.add_argument("-np", "--num-processes", type=int, default=1, help="worker processes (default: 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mednext_convert",
                                     description="Bring a public dataset into the raw layout "
                                                 "(imagesTr/CASE_0000<ending>, labelsTr/CASE<ending>, dataset.json).")
    sub = parser.add_subparsers(dest="format", required=True, metavar="{btcv,msd,folders}")

    p = sub.add_parser("btcv", help="BTCV / Synapse RawData (Training/img, Training/label, Testing/img)")
    p.add_argument("src", type=Path, help="the RawData folder (or the folder that contains it)")
    p.add_argument("--name", default="BTCV", help="dataset name (default: BTCV)")
    _common(p)

    p = sub.add_parser("msd", help="a Medical Segmentation Decathlon task folder TaskXX_Name")
    p.add_argument("src", type=Path, help="the TaskXX_Name folder")
    p.add_argument("--name", default=None, help="dataset name (default: the task's name)")
    _common(p)

    p = sub.add_parser("folders", help="an image folder and a label folder, matched by file name")
    p.add_argument("--images", type=Path, required=True, help="images: X<ending>, or X_0000<ending>, X_0001... ")
    p.add_argument("--labels", type=Path, required=True, help="label maps: X<ending>")
    p.add_argument("--test-images", type=Path, default=None, help="optional unlabelled images -> imagesTs")
    p.add_argument("--name", required=True, help="dataset name")
    p.add_argument("--channel-names", nargs="+", default=None, metavar="NAME",
                   help="one name per channel, e.g. CT or T1 T2 (selects the normalisation; "
                        "default: 'image', i.e. per-image z-score)")
    p.add_argument("--labels-json", type=Path, default=None,
                   help='JSON mapping label names to values, e.g. {"background": 0, "tumour": 1}; '
                        "default: the values found in the label files, named label_1, label_2, ...")
    _common(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("mednext_convert", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    output = args.output if args.output is not None else paths.raw_root(True)
    if args.format == "btcv":
        plan = btcv_plan(args.src, name=args.name)
    elif args.format == "msd":
        plan = msd_plan(args.src, name=args.name)
    else:
        plan = folders_plan(args.images, args.labels, args.name, channel_names=args.channel_names,
                            labels_json=args.labels_json, test_images_dir=args.test_images)
    try:
        target = write_dataset(plan, output, dataset_id=args.dataset_id, link=args.link,
                               overwrite=args.overwrite, verify=not args.no_verify,
                               num_processes=max(1, args.num_processes))
    except OSError as exc:  # an unwritable output root or a full disk is the user's to fix, not a bug
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT):
            raise
        raise UserError(f"{exc.filename or output}: {exc.strerror or exc}") from exc
    print(f"{target}: {len(plan.training)} training case(s), {len(plan.test)} test case(s), "
          f"{plan.dataset.num_channels} channel(s), labels {plan.dataset.labels}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
