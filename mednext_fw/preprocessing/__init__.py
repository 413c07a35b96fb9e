"""Crop-to-nonzero, normalisation, resampling and foreground locations; one case or a whole dataset."""
from mednext_fw.preprocessing.case_properties import CaseProperties
from mednext_fw.preprocessing.folder import CaseFolder, PreprocessedDataError, PreprocessedFolder
from mednext_fw.preprocessing.pipeline import preprocess_case
from mednext_fw.preprocessing.resampling import resample_data

__all__ = ["CaseProperties", "CaseFolder", "PreprocessedDataError", "PreprocessedFolder", "preprocess_case",
           "resample_data"]
