"""Evaluate a folder of predictions against a folder of references, case by case.

Cases are matched by case id (file name minus ``file_ending``). Refused, with a message naming the
files: a reference without a prediction, a prediction without a reference (unless ``case_ids``
restricts the set), and a pair whose shapes or spacings differ. Nothing is written unless every
case was evaluated. ``mean`` is the nan-mean over cases per region (cases where a metric is NaN,
e.g. Dice with both masks empty, drop out; +inf stays inf); ``foreground_mean`` is the nan-mean of
the region means. JSON holds NaN/Infinity as Python's json module writes them.
"""
from __future__ import annotations

import csv
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from mednext_fw.errors import UserError
from mednext_fw.evaluation.case_metrics import compute_case_metrics, region_key
from mednext_fw.io.atomic import atomic_path, write_json_atomic
from mednext_fw.io.cases import list_label_cases
from mednext_fw.io.image_io import read_seg

METRIC_ORDER = ("Dice", "IoU", "NSD", "HD95", "ASSD", "TP", "FP", "FN", "TN", "n_ref", "n_pred",
                "volume_ref", "volume_pred")


class EvaluationError(UserError, ValueError):
    """The folders cannot be evaluated as given (missing files, mismatched geometry)."""


def default_num_processes() -> int:
    from mednext_fw.devices import usable_cores

    return max(1, min(4, usable_cores()))


def _listing(names: Sequence[str], limit: int = 5) -> str:
    names = sorted(names)
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def match_cases(ref_dir: str | Path, pred_dir: str | Path, file_ending: str,
                case_ids: Sequence[str] | None = None, chill: bool = False) -> list[tuple[str, Path, Path]]:
    """``[(case_id, reference_file, prediction_file)]`` sorted by case id, or EvaluationError.

    ``chill`` (nnU-Net's flag): a reference without a prediction is skipped instead of refused, e.g.
    while a long prediction is still running; a prediction still needs its reference."""
    ref_dir, pred_dir = Path(ref_dir), Path(pred_dir)
    for d, what in ((ref_dir, "reference"), (pred_dir, "prediction")):
        if not d.is_dir():
            raise EvaluationError(f"{what} folder {d} does not exist")
    refs = list_label_cases(ref_dir, file_ending)
    preds = list_label_cases(pred_dir, file_ending)
    if case_ids is not None:
        wanted = [str(c) for c in case_ids]
        no_ref = [c for c in wanted if c not in refs]
        if no_ref:
            raise EvaluationError(f"no reference {file_ending} file in {ref_dir} for case(s) {_listing(no_ref)}")
    else:
        wanted = sorted(refs)
        if not wanted:
            raise EvaluationError(f"no reference files ending in {file_ending} in {ref_dir}")
        no_ref = sorted(set(preds) - set(refs))
        if no_ref:
            raise EvaluationError(f"prediction(s) without a reference in {ref_dir}: "
                                  f"{_listing([c + file_ending for c in no_ref])}")
    missing = [c for c in wanted if c not in preds]
    if missing and not chill:
        raise EvaluationError(f"missing prediction(s) in {pred_dir}: {_listing([c + file_ending for c in missing])} "
                              f"(--chill evaluates the predicted cases only)")
    found = sorted(c for c in wanted if c in preds)
    if not found:
        raise EvaluationError(f"no prediction in {pred_dir} for any of the {len(wanted)} reference case(s)")
    return [(c, refs[c], preds[c]) for c in found]


def evaluate_case(case: str, ref_file: Path, pred_file: Path, regions: Sequence[Sequence[int]],
                  ignore_label: int | None, tolerance_mm: float, surface: bool = True) -> dict[str, Any]:
    ref, ref_props = read_seg(ref_file)
    pred, pred_props = read_seg(pred_file)
    if ref.shape != pred.shape:
        raise EvaluationError(f"shape mismatch for case {case}: reference {ref_file} has {ref.shape[1:]}, "
                              f"prediction {pred_file} has {pred.shape[1:]}")
    if not np.allclose(ref_props.spacing, pred_props.spacing, rtol=1e-4, atol=1e-6):
        raise EvaluationError(f"spacing mismatch for case {case}: reference {ref_file} has {ref_props.spacing}, "
                              f"prediction {pred_file} has {pred_props.spacing}")
    metrics = compute_case_metrics(ref, pred, ref_props.spacing, regions, ignore_label, tolerance_mm, surface)
    return {"case": case, "reference_file": str(ref_file), "prediction_file": str(pred_file), "metrics": metrics}


def _nanmean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0 or np.all(np.isnan(arr)):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(arr))


def summarize(per_case: list[dict[str, Any]], keys: Sequence[str]) -> tuple[dict, dict]:
    mean: dict[str, dict[str, float]] = {}
    for key in keys:
        names = [m for m in METRIC_ORDER if per_case and m in per_case[0]["metrics"][key]]
        mean[key] = {m: _nanmean([c["metrics"][key][m] for c in per_case]) for m in names}
    names = [m for m in METRIC_ORDER if keys and m in mean[keys[0]]]
    foreground = {m: _nanmean([mean[k][m] for k in keys]) for m in names}
    return mean, foreground


def write_csv(per_case: list[dict[str, Any]], path: str | Path) -> None:
    """One row per case and region."""
    rows = [(c["case"], key, vals) for c in per_case for key, vals in c["metrics"].items()]
    names = [m for m in METRIC_ORDER if rows and m in rows[0][2]]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["case", "region", *names])
            for case, key, vals in rows:
                w.writerow([case, key, *(vals[m] for m in names)])


def _run_all(jobs: list[tuple], num_processes: int) -> list[dict[str, Any]]:
    bar = tqdm(total=len(jobs), desc="evaluating", unit="case", disable=None)
    results = []
    try:
        if num_processes <= 1 or len(jobs) == 1:
            for job in jobs:
                results.append(evaluate_case(*job))
                bar.update()
            return results
        # spawn: the caller may hold CUDA or OpenMP thread pools that do not survive fork.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(num_processes, len(jobs)), mp_context=ctx) as pool:
            futures = [pool.submit(evaluate_case, *job) for job in jobs]
            try:
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.update()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return results
    finally:
        bar.close()


def evaluate_folders(ref_dir: str | Path, pred_dir: str | Path, regions: Sequence[Sequence[int]],
                     file_ending: str, ignore_label: int | None = None, tolerance_mm: float = 1.0,
                     output_json: str | Path | None = None, output_csv: str | Path | None = None,
                     num_processes: int | None = None, case_ids: Sequence[str] | None = None,
                     surface: bool = True, chill: bool = False) -> dict[str, Any]:
    """Evaluate every matched case; write ``output_json``/``output_csv`` when given; return the summary.
    With ``chill`` the references without a prediction are skipped and listed under
    ``settings.skipped_references``."""
    if not regions:
        raise EvaluationError("no labels/regions to evaluate")
    pairs = match_cases(ref_dir, pred_dir, file_ending, case_ids, chill)
    skipped = []
    if chill:  # the references match_cases left out (one more listing, only here)
        matched = {c for c, _, _ in pairs}
        wanted = case_ids if case_ids is not None else list_label_cases(ref_dir, file_ending)
        skipped = sorted(str(c) for c in wanted if str(c) not in matched)
    regions = [tuple(int(v) for v in np.atleast_1d(r)) for r in regions]
    jobs = [(c, r, p, regions, ignore_label, tolerance_mm, surface) for c, r, p in pairs]
    per_case = sorted(_run_all(jobs, num_processes or default_num_processes()), key=lambda c: c["case"])
    keys = [region_key(r) for r in regions]
    mean, foreground = summarize(per_case, keys)
    summary = {
        "metric_per_case": per_case,
        "mean": mean,
        "foreground_mean": foreground,
        "settings": {"reference_folder": str(ref_dir), "prediction_folder": str(pred_dir),
                     "file_ending": file_ending, "regions": keys, "ignore_label": ignore_label,
                     "tolerance_mm": tolerance_mm, "surface_metrics": surface,
                     **({"skipped_references": skipped} if chill else {})},
    }
    if output_json is not None:
        write_json_atomic(summary, output_json)
    if output_csv is not None:
        write_csv(per_case, output_csv)
    return summary


def format_table(summary: dict[str, Any]) -> str:
    """Mean metrics per region plus the foreground mean, as fixed-width text."""
    tol = summary.get("settings", {}).get("tolerance_mm")
    cols = [m for m in ("Dice", "IoU", "NSD", "HD95", "ASSD") if m in summary["foreground_mean"]]
    heads = [f"NSD@{tol:g}mm" if m == "NSD" and tol is not None else m for m in cols]
    rows = [(k, v) for k, v in summary["mean"].items()] + [("foreground mean", summary["foreground_mean"])]
    width = max(len("region"), *(len(k) for k, _ in rows))
    lines = ["  ".join([f"{'region':<{width}}"] + [f"{h:>10}" for h in heads])]
    for key, vals in rows:
        lines.append("  ".join([f"{key:<{width}}"] + [f"{vals[m]:>10.4f}" for m in cols]))
    lines.append(f"{len(summary['metric_per_case'])} case(s)")
    return "\n".join(lines)
