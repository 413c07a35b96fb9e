"""Plans are data: typed dataclasses that round-trip to ``plans.json``.

Every later stage reads its choices from here, so a user can edit ``plans.json`` and re-run.
Unknown keys in a hand-edited file are an error (a typo would otherwise be silently ignored).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mednext_fw.errors import UserError
from mednext_fw.io.atomic import write_json_atomic


class PlansError(UserError, ValueError):
    pass


class PlanEditError(PlansError):
    """A plans.json value that cannot work (a hand edit or an override); the message names the key."""


def _from_dict(cls, d: dict[str, Any], where: str):
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise PlansError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(names)}")
    return cls(**d)


@dataclass
class NetworkPlan:
    """Which registered network to build and with what arguments."""

    name: str = "mednext"  # key in the network registry
    variant: str = "S"  # MedNeXt S/B/M/L (ignored by networks that have no variants)
    kernel_size: int = 3
    deep_supervision: bool = True
    checkpointing: bool = False  # gradient checkpointing (M/L default on)
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra builder arguments
    # The planned topology (MedNeXt): per down-sampling stage a stride per axis (1 or 2), per level a
    # kernel size per axis. None: the reference's 4 stages of stride 2 with kernel_size everywhere.
    strides: list[list[int]] | None = None
    kernel_sizes: list[list[int]] | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "network") -> "NetworkPlan":
        return _from_dict(cls, d, where)

    def builder_kwargs(self) -> dict[str, Any]:
        """Topology arguments for the network builder (none for the reference topology)."""
        out: dict[str, Any] = {}
        if self.strides is not None:
            out["strides"] = [list(s) for s in self.strides]
        if self.kernel_sizes is not None:
            out["kernel_sizes"] = [list(k) for k in self.kernel_sizes]
        return out

    def with_kernel_size(self, k: int) -> None:
        """Change the kernel (e.g. ``-k 5``): every planned kernel side > 1 becomes ``k``."""
        self.kernel_size = int(k)
        if self.kernel_sizes is not None:
            self.kernel_sizes = [[int(k) if v > 1 else 1 for v in level] for level in self.kernel_sizes]


@dataclass
class IntensityStats:
    mean: float
    std: float
    median: float
    min: float
    max: float
    percentile_00_5: float
    percentile_99_5: float

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "intensity") -> "IntensityStats":
        return _from_dict(cls, d, where)


@dataclass
class Configuration:
    name: str
    dim: int  # 2 or 3
    spacing: list[float]  # target spacing in the transposed axis order
    patch_size: list[int]
    batch_size: int
    median_image_size: list[int]
    normalization: list[str]  # per channel: "ct" | "zscore" | "none" | "rescale_0_1" | "rgb_0_1"
    use_mask_for_norm: list[bool]
    network: NetworkPlan = field(default_factory=NetworkPlan)
    data_identifier: str = ""  # sub-folder of the preprocessed dataset holding this configuration's arrays
    batch_dice: bool = True
    mirror_axes: list[int] = field(default_factory=list)  # spatial axes (0-based) used for mirroring aug/TTA
    anisotropy_threshold: float = 3.0  # separate-z resampling when max/min spacing exceeds this
    task: str = "segmentation"  # or "classification"
    previous_stage: str | None = None
    next_stage: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # plug-in specific choices (e.g. a recipe)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "configuration") -> "Configuration":
        d = dict(d)
        d["network"] = NetworkPlan.from_dict(d.get("network", {}), f"{where}.network")
        config = _from_dict(cls, d, where)
        config.validate(where)
        return config

    def validate(self, where: str = "configuration") -> None:
        """Refuse a topology that cannot run, naming the key: strides other than 1/2, lists of the
        wrong length, a patch side that is not a multiple of its axis's total stride."""
        net = self.network
        if self.task != "segmentation" or not net.name.startswith("mednext"):
            return
        from mednext_fw.network_architectures.mednext.topology import (TopologyError, check_divisible,
                                                                        normalise_topology, reference_topology)
        key = f"{where}.network"
        if net.strides is None and net.kernel_sizes is None:  # plans written before topologies were planned
            net_strides, net_kernels = reference_topology(self.dim, net.kernel_size)
            net = NetworkPlan(**{**asdict(net), "strides": net_strides, "kernel_sizes": net_kernels})
        if net.strides is None or net.kernel_sizes is None:
            missing = "strides" if net.strides is None else "kernel_sizes"
            raise PlanEditError(f"{key}.{missing}: missing; give both {key}.strides and {key}.kernel_sizes "
                                f"(or remove both for the reference topology)")
        try:
            strides, kernels = normalise_topology(net.strides, net.kernel_sizes, self.dim, key)
        except TopologyError as exc:
            raise PlanEditError(str(exc)) from None
        if max(max(k) for k in kernels) != net.kernel_size:
            raise PlanEditError(f"{key}.kernel_size = {net.kernel_size} disagrees with {key}.kernel_sizes (largest "
                                f"{max(max(k) for k in kernels)}); change both (kernel_size is the largest kernel)")
        if len(self.patch_size) != self.dim:
            raise PlanEditError(f"{where}.patch_size = {self.patch_size}: needs {self.dim} sides")
        try:
            check_divisible(self.patch_size, strides, f"{where}.patch_size")
        except TopologyError as exc:
            raise PlanEditError(f"{exc}; change {where}.patch_size or {key}.strides") from None


@dataclass
class Plans:
    dataset_name: str
    plans_name: str = "mednextPlans"
    transpose_forward: list[int] = field(default_factory=lambda: [0, 1, 2])
    transpose_backward: list[int] = field(default_factory=lambda: [0, 1, 2])
    original_median_spacing: list[float] = field(default_factory=list)  # transposed order
    original_median_shape: list[int] = field(default_factory=list)  # transposed order, after crop
    foreground_intensity_properties: dict[str, IntensityStats] = field(default_factory=dict)  # per channel index
    configurations: dict[str, Configuration] = field(default_factory=dict)
    gpu_memory_gb: float = 8.0
    planner_notes: list[str] = field(default_factory=list)  # human-readable reasons for each choice

    def configuration(self, name: str) -> Configuration:
        if name not in self.configurations:
            raise PlansError(f"configuration '{name}' is not in the plans; available: {sorted(self.configurations)}")
        return self.configurations[name]

    # ---------- (de)serialisation ----------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "plans.json") -> "Plans":
        d = dict(d)
        d["foreground_intensity_properties"] = {
            k: IntensityStats.from_dict(v, f"{where}.foreground_intensity_properties.{k}")
            for k, v in d.get("foreground_intensity_properties", {}).items()
        }
        d["configurations"] = {
            k: Configuration.from_dict(v, f"{where}.configurations.{k}") for k, v in d.get("configurations", {}).items()
        }
        return _from_dict(cls, d, where)

    def save(self, path: str | Path) -> None:
        write_json_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> "Plans":
        path = Path(path)
        if not path.is_file():
            raise PlansError(f"{path}: plans file not found (run mednext_plan_and_preprocess first)")
        try:
            return cls.from_dict(json.loads(path.read_text()), where=str(path))
        except (json.JSONDecodeError, TypeError) as exc:
            raise PlansError(f"{path}: invalid plans file ({exc})") from exc
