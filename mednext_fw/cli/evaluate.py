"""``mednext_evaluate``: Dice, IoU, NSD, HD95 and ASSD of a prediction folder against references;
for a classification CSV (``-pred predictions.csv``) accuracy, balanced accuracy, macro F1, the
confusion matrix and the per-case accuracy spread against a reference CSV or folder of classes."""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from mednext_fw.cli.common import run_command
from mednext_fw.cli.hardware import add_threads_flag
from mednext_fw.errors import UsageError
from mednext_fw.io.atomic import sweep_temporaries


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mednext_evaluate",
        description="Evaluate predicted label maps against reference label maps, matched by case id. "
                    "Writes summary.json (per case, mean per label/region, foreground mean) and a per-case CSV. "
                    "Classification: -pred a CSV of mednext_predict, -ref a CSV (file,label) or a folder of "
                    "classes (REF/<class>/<image>); -d adds the class order and the dataset's case rule.",
    )
    p.add_argument("-ref", required=True, type=Path, help="folder with the reference segmentations (classification: "
                                                          "a file,label CSV or a folder of class folders)")
    p.add_argument("-pred", required=True, type=Path, help="folder with the predicted segmentations "
                                                           "(classification: the predictions CSV)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("-d", dest="dataset", help="dataset id or name in $MEDNEXT_raw: labels, regions, ignore "
                                                "label and file ending come from its dataset.json")
    src.add_argument("-l", dest="labels", nargs="+", metavar="LABEL",
                     help="labels to evaluate; '1,2' evaluates the union of labels 1 and 2 as one region")
    p.add_argument("-il", "--ignore-label", type=int, default=None,
                   help="with -l: reference value whose voxels are excluded from every metric")
    p.add_argument("--tolerance-mm", type=float, default=1.0, help="NSD tolerance in mm (default 1.0)")
    p.add_argument("-o", dest="output", type=Path, default=None, help="summary JSON (default PRED/summary.json)")
    p.add_argument("--csv", type=Path, default=None, help="per-case CSV (default PRED/summary.csv)")
    p.add_argument("-np", "--num-workers", "--num-processes", dest="num_processes", type=int, default=None,
                   help="worker processes (default: the usable cores, at most 4)")
    add_threads_flag(p)
    p.add_argument("--no-surface", action="store_true", help="skip NSD/HD95/ASSD (overlap metrics only)")
    p.add_argument("--chill", action="store_true", help="evaluate the cases that have a prediction and skip "
                   "references without one (listed in the summary), as nnU-Net's --chill; default: refuse")
    return p


def _parse_regions(values: list[str]) -> list[tuple[int, ...]]:
    regions = []
    for v in values:
        try:
            region = tuple(int(x) for x in v.split(",") if x.strip())
        except ValueError:
            raise UsageError(f"label '{v}' is not an integer or a comma-separated list of integers") from None
        if not region:
            raise UsageError(f"empty label '{v}'")
        regions.append(region)
    return regions


def _infer_file_ending(ref_dir: Path) -> str:
    from mednext_fw.evaluation import EvaluationError
    from mednext_fw.io.image_io import NATURAL_2D_ENDINGS, SITK_ENDINGS, file_ending_of

    if not ref_dir.is_dir():
        raise EvaluationError(f"reference folder {ref_dir} does not exist")
    known = set(SITK_ENDINGS + NATURAL_2D_ENDINGS)
    endings = Counter(file_ending_of(f) for f in ref_dir.iterdir() if f.is_file() and not f.name.startswith("."))
    endings = {e: n for e, n in endings.items() if e in known}
    if not endings:
        raise EvaluationError(f"no image files in reference folder {ref_dir}")
    if len(endings) > 1:
        raise EvaluationError(f"reference folder {ref_dir} mixes file endings {sorted(endings)}; "
                              "use -d DATASET so the ending comes from dataset.json")
    return next(iter(endings))


def _from_dataset(query: str):
    from mednext_fw import paths
    from mednext_fw.io.dataset_json import DatasetJson
    from mednext_fw.io.lookup import find_dataset

    raw = paths.raw_root()
    ds = DatasetJson.load(raw / find_dataset(query, roots=[raw]) / "dataset.json")
    if ds.task == "classification":
        raise UsageError(f"dataset {query} is a classification dataset; mednext_evaluate scores segmentations")
    return ds.foreground_regions, ds.ignore_label, ds.file_ending


def _classification(args: argparse.Namespace) -> int:
    """The classification branch: ``-pred`` is a predictions CSV."""
    from mednext_fw.evaluation.classification_files import evaluate_classification, format_summary
    from mednext_fw.io.atomic import write_json_atomic
    from mednext_fw.planners.classification import DEFAULT_CASE_REGEX

    names, regex = None, DEFAULT_CASE_REGEX
    if args.dataset is not None:
        from mednext_fw import paths
        from mednext_fw.io.dataset_json import DatasetJson
        from mednext_fw.io.lookup import find_dataset

        raw = paths.raw_root()
        ds = DatasetJson.load(raw / find_dataset(args.dataset, roots=[raw]) / "dataset.json")
        if ds.task != "classification":
            raise UsageError(f"dataset {args.dataset} is a {ds.task} dataset; a predictions CSV needs a "
                             "classification dataset")
        names, regex = ds.class_names, ds.extra.get("case_id_regex", DEFAULT_CASE_REGEX)
    elif args.labels is not None:
        raise UsageError("-l lists segmentation labels; for a classification CSV give -d DATASET or nothing")
    summary = evaluate_classification(args.ref, args.pred, names, regex)
    out = args.output or args.pred.with_name("summary.json")
    write_json_atomic(summary, out)
    print(format_summary(summary))
    print(f"summary: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.pred.suffix.lower() != ".csv" and args.dataset is None and args.labels is None:
        parser.error("one of the arguments -d -l is required (unless -pred is a classification CSV)")
    if args.pred.suffix.lower() == ".csv":
        return run_command("mednext_evaluate", lambda: _classification(args))
    return run_command("mednext_evaluate", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from mednext_fw.cli.hardware import check_counts
    from mednext_fw.devices import use_threads
    from mednext_fw.evaluation import evaluate_folders, format_table

    check_counts(args)
    use_threads("cpu", args.threads, workers=0)
    if args.dataset is not None:
        if args.ignore_label is not None:
            raise UsageError("-il/--ignore-label goes with -l; with -d the ignore label comes from dataset.json")
        regions, ignore, ending = _from_dataset(args.dataset)
    else:
        regions, ignore, ending = _parse_regions(args.labels), args.ignore_label, _infer_file_ending(args.ref)
    if args.num_processes is not None and args.num_processes < 1:
        raise UsageError(f"-np must be >= 1, got {args.num_processes}")
    output_json, output_csv = args.output or args.pred / "summary.json", args.csv or args.pred / "summary.csv"
    for folder in {output_json.parent, output_csv.parent}:  # what a killed earlier run left half-written
        sweep_temporaries(folder, recursive=False)
    summary = evaluate_folders(
        args.ref, args.pred, regions, ending, ignore_label=ignore, tolerance_mm=args.tolerance_mm,
        output_json=output_json, output_csv=output_csv,
        num_processes=args.num_processes, surface=not args.no_surface, chill=args.chill,
    )
    print(format_table(summary))
    skipped = summary["settings"].get("skipped_references")
    if skipped:
        print(f"--chill: {len(skipped)} reference case(s) without a prediction skipped: {', '.join(skipped)}")
    print(f"summary: {output_json}\nper case: {output_csv}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
