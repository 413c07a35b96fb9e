"""MedNeXt (S/B/M/L, kernel 3/5, 2D/3D, planned per-axis topology): builder, blocks, UpKern, memory
estimate and checkpoint import.

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
from mednext_fw.network_architectures.mednext.factory import create_mednext, mednext_arch
from mednext_fw.network_architectures.mednext.memory import MemoryEstimate, estimate_training_memory
from mednext_fw.network_architectures.mednext.model import DIVISOR, MedNeXt, MedNeXtArch
from mednext_fw.network_architectures.mednext.topology import TopologyError, total_strides
from mednext_fw.network_architectures.mednext.upkern import UpKernError, UpKernReport, upkern_init, upkern_state_dict

__all__ = [
    "DIVISOR",
    "MEDNEXT_VARIANTS",
    "CheckpointImportError",
    "MedNeXt",
    "MedNeXtArch",
    "MedNeXtConfig",
    "MemoryEstimate",
    "TopologyError",
    "UpKernError",
    "UpKernReport",
    "arch_from_state_dict",
    "convert_monai_state_dict",
    "convert_reference_state_dict",
    "create_mednext",
    "estimate_training_memory",
    "get_variant",
    "load_monai_state_dict",
    "load_reference_checkpoint",
    "mednext_arch",
    "read_reference_checkpoint",
    "to_reference_state_dict",
    "total_strides",
    "upkern_init",
    "upkern_state_dict",
]
