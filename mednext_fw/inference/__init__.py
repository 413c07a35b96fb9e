"""Sliding-window inference, TTA, fold ensembling and export to the input's native geometry."""
from mednext_fw.inference.model_folder import ModelFolder, ModelFolderError, resolve_model_folder
from mednext_fw.inference.postprocessing import (PostprocessingRules, apply_postprocessing,
                                                 determine_postprocessing)
from mednext_fw.inference.predictor import Predictor
from mednext_fw.inference.sliding_window import SlidingWindowSettings, sliding_window_predict

__all__ = [
    "Predictor", "ModelFolder", "ModelFolderError", "resolve_model_folder",
    "PostprocessingRules", "apply_postprocessing", "determine_postprocessing",
    "SlidingWindowSettings", "sliding_window_predict",
]
