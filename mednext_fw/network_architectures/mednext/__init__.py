"""MedNeXt (S/B/M/L, kernel 3/5, 2D/3D): builder, blocks, UpKern and checkpoint import.

Importing this package registers ``mednext`` and ``mednext_S/B/M/L`` in ``NETWORKS``.
The network computes in channels-last internally (no caller action needed; see ``model.py``).
"""
from mednext_fw.network_architectures.mednext.checkpoint_import import (
    CheckpointImportError,
    arch_from_state_dict,
    convert_monai_state_dict,
    convert_reference_state_dict,
    load_monai_state_dict,
    load_reference_checkpoint,
    read_reference_checkpoint,
    to_reference_state_dict,
)
from mednext_fw.network_architectures.mednext.configs import MEDNEXT_VARIANTS, MedNeXtConfig, get_variant
from mednext_fw.network_architectures.mednext.factory import create_mednext
from mednext_fw.network_architectures.mednext.model import DIVISOR, MedNeXt, MedNeXtArch
from mednext_fw.network_architectures.mednext.upkern import UpKernError, UpKernReport, upkern_init, upkern_state_dict

__all__ = [
    "DIVISOR",
    "MEDNEXT_VARIANTS",
    "CheckpointImportError",
    "MedNeXt",
    "MedNeXtArch",
    "MedNeXtConfig",
    "UpKernError",
    "UpKernReport",
    "arch_from_state_dict",
    "convert_monai_state_dict",
    "convert_reference_state_dict",
    "create_mednext",
    "get_variant",
    "load_monai_state_dict",
    "load_reference_checkpoint",
    "read_reference_checkpoint",
    "to_reference_state_dict",
    "upkern_init",
    "upkern_state_dict",
]
