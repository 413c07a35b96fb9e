"""Model selection: compare trained configurations and their ensembles on the cross-validation,
choose the best, decide its postprocessing and write the inference instructions.

This stage sits after training and uses inference (ensembling, postprocessing) and evaluation;
only ``cli`` imports it.
"""
from mednext_fw.selection.crossval import SelectionError, TrainedModel
from mednext_fw.selection.find_best import find_best_configuration

__all__ = ["SelectionError", "TrainedModel", "find_best_configuration"]
