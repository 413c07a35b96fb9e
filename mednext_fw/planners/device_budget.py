"""Plans meet the machine: the device budget a plan is made for, and the CPU plan.

GPU: the memory budget is the card's free memory now, minus a margin (``devices.gpu_planning_budget_gb``:
10% of the card, at least 1 GiB), instead of a fixed 8 GB. ``--gpu-memory-gb`` overrides it and
also plans for a GPU from a machine without one (a login node).

CPU: memory is rarely the limit (RAM), time is. A default GPU plan trains 35-106 s per iteration on a
2-core CPU. The CPU plan bounds the *step time* instead: a training step's cost is modelled as the
activations the network keeps for its backward pass (``memory_model.activation_elements``, which
also tracks the FLOPs of MedNeXt's depthwise and 1x1 convolutions) over a throughput measured on
the project's CPU. The search keeps the target spacing as long as it can and gives up, in order:
width (32 -> 16 -> 8 channels), then spacing (coarser by 1.5x, 2x, 3x, ...), so that a patch which
fits the step-time target still covers at least a quarter of the median image (context matters
more than resolution for a first model). Every choice is written to ``planner_notes`` with its reason.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from mednext_fw.network_architectures.mednext.configs import get_variant
from mednext_fw.planners.fingerprint import Fingerprint
from mednext_fw.planners.memory_model import activation_elements
from mednext_fw.planners.plans import Configuration, Plans
from mednext_fw.planners.spacing import median_shape_at
from mednext_fw.planners.topology import plan_topology

# Training throughput of one core, in kept activation elements per second for MedNeXt-S at width 8
# (measured: 6.5-7.4e7 for 32^3 and 48^3 patches, batch 2, 1 thread, fwd + DS loss + bwd + AdamW),
# falling with width as the 1x1 convolutions grow (width 32: 4.6e7): rate = BASE / (1 + width / 48).
CPU_ELEMENTS_PER_CORE_SECOND = 8.0e7
WIDTH_COST_SCALE = 48.0
EXTRA_CORE_EFFICIENCY = 0.7  # each further thread adds 70% of a core (memory-bound convolutions)
CPU_STEP_TARGET_S = 0.5  # default: ~1000 steps in 10 minutes, enough for a usable first model
CPU_MIN_STEPS_IN_BUDGET = 1000  # with a time budget the target is budget / this (x 0.8 for validation)
CPU_STEP_TARGET_RANGE = (0.1, 60.0)
CPU_WIDTHS = (32, 16, 8)
CPU_SPACING_FACTORS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
MIN_COVERAGE = 0.25  # the patch must cover this share of the median image
CPU_BATCH = 2
# of the available RAM, for the (rarely binding) memory budget; the other half also absorbs what the
# training commands' heap reuse keeps beyond the estimate (+21% peak RSS, mednext_fw/heap.py)
CPU_RAM_FRACTION = 0.5
DIVISOR = 16


@dataclass
class DeviceBudget:
    device: str  # "cuda" | "mps" | "cpu": what the plan is made for
    memory_gb: float
    cores: int
    threads: int  # threads one training process will use (the CPU plan's step-time model)
    time_budget_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def cpu_step_target_s(self) -> float:
        if self.time_budget_s is None:
            return CPU_STEP_TARGET_S
        lo, hi = CPU_STEP_TARGET_RANGE
        return min(hi, max(lo, 0.8 * self.time_budget_s / CPU_MIN_STEPS_IN_BUDGET))


def detect_budget(device: str = "auto", gpu_memory_gb: float | None = None, time_budget_s: float | None = None,
                  resolve: Callable[[str], str] | None = None, gpu_query=None, ram_gb: float | None = None,
                  cores: int | None = None) -> DeviceBudget:
    """What to plan for. The system queries are arguments so tests can fake a GPU or a CPU box."""
    from mednext_fw import devices

    cores = cores or devices.usable_cores()
    threads = devices.plan_cpu_share("cpu", cores).threads
    if gpu_memory_gb is not None:
        return DeviceBudget("cuda", float(gpu_memory_gb), cores, threads, time_budget_s,
                            [f"planned for a GPU with {gpu_memory_gb} GB (set by --gpu-memory-gb)"])
    kind = (resolve or devices.resolve_device_type)(device)
    if kind == "cuda":
        free, total = devices.gpu_free_memory_gb(0, gpu_query)
        budget = round(devices.gpu_planning_budget_gb(free, total), 1)
        if budget <= 1:
            raise devices.DeviceError(f"the GPU has only {free:.1f} of {total:.1f} GiB free; free it or plan with "
                                      "--gpu-memory-gb")
        return DeviceBudget("cuda", budget, cores, threads, time_budget_s, [
            f"planned for the GPU: {free:.1f} of {total:.1f} GiB free now, minus a margin of "
            f"{max(devices.GPU_MARGIN_MIN_GB, devices.GPU_MARGIN_FRACTION * total):.1f} GiB -> {budget} GB "
            "(--gpu-memory-gb overrides)"])
    ram = ram_gb if ram_gb is not None else devices.available_ram_gb()
    memory = round(max(2.0, CPU_RAM_FRACTION * ram), 1)
    if kind == "mps":  # unified memory: the GPU shares the RAM
        return DeviceBudget("mps", memory, cores, threads, time_budget_s,
                            [f"planned for Apple MPS with {memory} GB ({CPU_RAM_FRACTION:.0%} of the available RAM)"])
    return DeviceBudget("cpu", memory, cores, threads, time_budget_s, [
        f"no GPU: planned for the CPU ({cores} usable core(s), {threads} training thread(s), {memory} GB = "
        f"{CPU_RAM_FRACTION:.0%} of the available RAM); pass --gpu-memory-gb to plan for a GPU elsewhere"])


def cpu_step_seconds(width: int, patch: Sequence[int], batch: int, threads: int, in_channels: int,
                     num_classes: int, variant: str = "S") -> float:
    """Modelled seconds of one training step on the CPU."""
    cfg = dataclasses.replace(get_variant(variant), n_channels=int(width))
    elements = batch * activation_elements(cfg, patch, in_channels, num_classes)
    rate = CPU_ELEMENTS_PER_CORE_SECOND / (1 + width / WIDTH_COST_SCALE)
    return elements / (rate * (1 + EXTRA_CORE_EFFICIENCY * (max(1, threads) - 1)))


@dataclass
class CpuChoice:
    spacing: list[float]
    median: list[int]
    patch: list[int]
    width: int
    step_s: float
    coverage: float


def _round_up(v: float) -> int:
    return int(max(DIVISOR, DIVISOR * math.ceil(v / DIVISOR)))


def _fit_patch(median: Sequence[int], fits: Callable[[list[int]], bool]) -> list[int] | None:
    """Largest patch (multiples of 16, at most the median image rounded up) that ``fits``; the side with
    the largest patch/median ratio shrinks first, as in the GPU planner."""
    patch = [_round_up(m) for m in median]
    while not fits(patch):
        ratios = [p / m if p > DIVISOR else -1 for p, m in zip(patch, median)]
        if max(ratios) < 0:
            return None
        patch[int(np.argmax(ratios))] -= DIVISOR
    return patch


def plan_cpu_configuration(spacing: Sequence[float], median_at: Callable[[list[float]], list[int]], threads: int,
                           target_s: float, in_channels: int, num_classes: int) -> CpuChoice:
    """The first (finest spacing, then widest) choice whose patch fits ``target_s`` and covers the image."""
    fallback = None
    for factor in CPU_SPACING_FACTORS:
        sp = [float(s) * factor for s in spacing]
        median = [max(1, int(m)) for m in median_at(sp)]
        for width in CPU_WIDTHS:
            step = lambda p: cpu_step_seconds(width, p, CPU_BATCH, threads, in_channels, num_classes)  # noqa: E731
            patch = _fit_patch(median, lambda p: step(p) <= target_s)
            if patch is None:
                continue
            coverage = min(1.0, float(np.prod(patch, dtype=float) / np.prod(median, dtype=float)))
            choice = CpuChoice(sp, median, patch, width, step(patch), coverage)
            if coverage >= MIN_COVERAGE:
                return choice
            if fallback is None or choice.coverage > fallback.coverage:
                fallback = choice
    if fallback is None:  # not even a 16^n patch of the narrowest network fits: take it anyway
        sp = [float(s) * CPU_SPACING_FACTORS[-1] for s in spacing]
        median = median_at(sp)
        patch = [DIVISOR] * len(spacing)
        fallback = CpuChoice(sp, median, patch, CPU_WIDTHS[-1],
                             cpu_step_seconds(CPU_WIDTHS[-1], patch, CPU_BATCH, threads, in_channels, num_classes),
                             min(1.0, float(np.prod(patch) / np.prod(median))))
    return fallback


def fit_plans_to_cpu(plans: Plans, fp: Fingerprint, budget: DeviceBudget, in_channels: int, num_classes: int,
                     forced_variant: str | None = None, keep_lowres: bool = False) -> Plans:
    """Rewrite the planned segmentation configurations for a CPU (in place; also returned).

    ``3d_lowres`` (and with it ``3d_cascade_fullres``) is dropped: the CPU ``3d_fullres`` is already
    planned at a coarse enough spacing. ``keep_lowres`` (``--lowres``) keeps both.
    """
    target = budget.cpu_step_target_s()
    fwd, bwd = plans.transpose_forward, plans.transpose_backward
    notes = plans.planner_notes
    notes.append(f"CPU: step-time target {target:.2f} s per training step"
                 + (f" (time budget {budget.time_budget_s:.0f} s / {CPU_MIN_STEPS_IN_BUDGET} steps)"
                    if budget.time_budget_s else " (default; planning with --time-budget scales it)"))
    if not keep_lowres and plans.configurations.pop("3d_lowres", None) is not None:
        plans.configurations.pop("3d_cascade_fullres", None)  # a cascade without its first stage cannot run
        notes.append("CPU: 3d_lowres (and the cascade) dropped, the CPU 3d_fullres is already planned coarse")
    full = plans.configurations.get("3d_fullres")
    if full is not None and full.previous_stage:
        full.previous_stage = None

    def median_at(sp_t: list[float], prefix: list[float]) -> list[int]:
        sp_full = prefix + sp_t
        file_order = [sp_full[b] for b in bwd]
        med = median_shape_at(fp.spacings, fp.shapes_after_crop, file_order)
        return [med[a] for a in fwd][len(prefix):]

    for name, cfg in plans.configurations.items():
        if cfg.task != "segmentation" or cfg.dim not in (2, 3):
            continue
        prefix = [] if cfg.dim == 3 else [float(plans.original_median_spacing[0] if plans.original_median_spacing
                                                 else 1.0)]
        choice = plan_cpu_configuration(cfg.spacing, lambda sp: median_at(sp, prefix), budget.threads, target,
                                        in_channels, num_classes)
        _apply(cfg, choice, forced_variant, budget)
        notes.append(f"CPU {name}: spacing {[round(v, 3) for v in choice.spacing]}, width {choice.width}, patch "
                     f"{choice.patch} x batch {CPU_BATCH}: modelled {choice.step_s:.2f} s per step on "
                     f"{budget.threads} thread(s), the patch covers {choice.coverage:.0%} of the median image "
                     f"{choice.median} (finest spacing, then widest network, whose patch covers >= "
                     f"{MIN_COVERAGE:.0%} within the target)")
    return plans


def _apply(cfg: Configuration, choice: CpuChoice, forced_variant: str | None, budget: DeviceBudget) -> None:
    cfg.spacing = [float(v) for v in choice.spacing]
    cfg.median_image_size = [int(v) for v in choice.median]
    cfg.patch_size = [int(v) for v in choice.patch]
    # the topology follows the CPU spacing and patch (sides are multiples of 16: any planned stride fits)
    topo = plan_topology(cfg.spacing, cfg.patch_size, cfg.network.kernel_size)
    cfg.network.strides, cfg.network.kernel_sizes = topo.strides, topo.kernel_sizes
    cfg.batch_size = CPU_BATCH
    if not forced_variant:
        cfg.network.variant = "S"
        cfg.network.checkpointing = False  # recomputation only costs time on a CPU
    if choice.width != get_variant(cfg.network.variant).n_channels:
        cfg.network.kwargs["n_channels"] = int(choice.width)
    cfg.extra["planned_for"] = "cpu"
