"""Evaluation: segmentation metrics per case and region, folder evaluation, classification metrics.

Pure numpy/scipy on label arrays; only ``folder`` reads files (through ``mednext_fw.io``).
"""
from mednext_fw.evaluation.case_metrics import compute_case_metrics, region_key, region_mask
from mednext_fw.evaluation.classification import classification_metrics, confusion_matrix, per_case_accuracy
from mednext_fw.evaluation.folder import (EvaluationError, evaluate_folders, format_table, match_cases,
                                          write_csv)
from mednext_fw.evaluation.overlap import overlap_metrics
from mednext_fw.evaluation.surface import surface_distances, surface_metrics

__all__ = [
    "EvaluationError", "classification_metrics", "compute_case_metrics", "confusion_matrix",
    "evaluate_folders", "format_table", "match_cases", "overlap_metrics", "per_case_accuracy", "region_key",
    "region_mask",
    "surface_distances", "surface_metrics", "write_csv",
]
