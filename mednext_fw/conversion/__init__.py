"""Bring public datasets into the raw layout: BTCV, Medical Segmentation Decathlon, plain folders.

Each converter builds a `ConversionPlan` (what goes where, and the dataset.json); `write_dataset`
checks it, builds the folder aside, runs the integrity check and swaps it into place.
"""
from mednext_fw.conversion.btcv import ORGANS, btcv_plan
from mednext_fw.conversion.common import CaseSpec, ConversionError, ConversionPlan
from mednext_fw.conversion.folders import folders_plan
from mednext_fw.conversion.msd import msd_plan
from mednext_fw.conversion.target import choose_folder
from mednext_fw.conversion.writer import write_dataset

__all__ = ["ORGANS", "CaseSpec", "ConversionError", "ConversionPlan", "btcv_plan", "choose_folder",
           "folders_plan", "msd_plan", "write_dataset"]
