"""Trainer name -> trainer class (selected with ``mednext_train -tr NAME``)."""
from mednext_fw.registry import Registry

TRAINERS = Registry(
    "trainer",
    "mednext_fw.trainers",
    builtin_modules=("mednext_fw.trainers.segmentation",),
)
