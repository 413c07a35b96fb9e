"""Learning-rate schedules stepped once per epoch."""
from mednext_fw.trainers.schedules.poly import PolyLRSchedule

__all__ = ["PolyLRSchedule"]
