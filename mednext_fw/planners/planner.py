"""Fingerprint -> plans: configurations 2d / 3d_fullres / 3d_lowres, patch, batch and MedNeXt variant.

Rules (nnU-Net's, with MedNeXt's own memory model in place of the U-Net's):
- target spacing: ``spacing.target_spacing`` (or ``--spacing``); the coarsest axis goes first.
- topology (``topology.plan_topology``): per stage, an axis is downsampled only while its spacing is
  <= 2x the finest and its feature map stays >= 4 voxels; kernel 1 on an axis > 2x the finest; at
  most 4 stages (the reference's). Isotropic spacing and a patch >= 64 give the reference MedNeXt.
- patch: shaped like 1/spacing with the volume of 256^3 (2048^2 in 2D), clipped to the median image,
  topology planned for it, sides rounded up to multiples of their axis's total stride; then the side
  with the largest patch/median ratio shrinks by its total stride (topology re-planned) until two
  samples fit the memory budget. Memory comes from the network's own estimate (``memory_model``).
- batch: as many samples as fit, at most 5% of the dataset's voxels per batch, at least 2.
- variant (compound scaling, largest first): the data allow a variant by the dataset size in units of
  128^3 training voxels (``DATA_UNITS_FOR``: <50 -> S, <200 -> B, <1000 -> M, else L); the budget
  allows it when its memory-fitted patch keeps at least ``MIN_PATCH_FRACTION`` of the reference
  patch (MedNeXt's 128^3, 512^2 in 2D, shaped like 1/spacing and clipped to the median image). The largest variant both allow is used (S always). ``-m``/``-k`` override.
- 3d_lowres: only when the fullres patch covers < 25% of the median image; spacing grows by 3% per
  step until it covers 25%; dropped if it does not halve the median image's voxels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.labels import num_outputs
from mednext_fw.network_architectures.mednext.configs import get_variant
from mednext_fw.planners.fingerprint import Fingerprint
from mednext_fw.planners.cascade import add_cascade
from mednext_fw.planners.memory_model import max_batch_size
from mednext_fw.planners.plans import Configuration, NetworkPlan, Plans
from mednext_fw.planners.topology import RULE as TOPOLOGY_RULE
from mednext_fw.planners.topology import Topology, plan_topology, round_patch
from mednext_fw.planners.spacing import ANISOTROPY_THRESHOLD, median_shape_at, target_spacing, transpose_for
from mednext_fw.planners.normalization_choice import scheme_for_channel

PLANS_NAME = "mednextPlans"
MIN_PATCH_SIDE = 8  # the memory loop never shrinks a side below this
REF_VOLUME = {3: 256 ** 3, 2: 2048 ** 2}  # starting patch volume (nnU-Net's)
VARIANT_REF_VOLUME = {3: 128 ** 3, 2: 512 ** 2}  # the patch a variant must mostly keep (MedNeXt's 128^3)
VARIANT_ORDER = ("L", "M", "B", "S")
DATA_UNITS_FOR = {"S": 0.0, "B": 50.0, "M": 200.0, "L": 1000.0}
MIN_PATCH_FRACTION = 0.5
BATCH_CAP_FRACTION = 0.05
LOWRES_COVERAGE = 0.25


@dataclass
class PlannerOptions:
    gpu_memory_gb: float = 8.0
    variant: str | None = None  # -m
    kernel_size: int | None = None  # -k
    spacing: list[float] | None = None  # --spacing, in the files' (Z, Y, X) order
    force_lowres: bool = False  # --lowres: plan 3d_lowres (and the cascade) even when the patch covers the image
    notes: list[str] = field(default_factory=list)


@dataclass
class _Patch:
    patch: list[int]
    batch: int
    reference: list[int]
    topology: Topology


def _fit_topology(spacing: Sequence[float], patch: Sequence[float], kernel_size: int) -> tuple[list[int], Topology]:
    """Plan the topology for ``patch`` and round the patch to it; re-plan once if rounding changed the
    sizes enough to allow another stage (rounding only ever grows sides)."""
    topo = plan_topology(spacing, patch, kernel_size)
    rounded = round_patch(patch, topo)
    again = plan_topology(spacing, rounded, kernel_size)
    if again != topo and all(r % t == 0 for r, t in zip(rounded, again.total_strides)):
        topo = again
    return rounded, topo


def plan_patch(variant: str, spacing: Sequence[float], median: Sequence[int], dataset_voxels: float,
               budget_gb: float, kernel_size: int, in_channels: int, num_classes: int) -> _Patch:
    """``dataset_voxels``: median image voxels (3D, even for the 2d configuration) x number of cases."""
    dim = len(spacing)
    inv = 1.0 / np.asarray(spacing, float)
    shaped = lambda volume: [min(s, m) for s, m in zip(inv * (volume / np.prod(inv)) ** (1 / dim), median)]  # noqa: E731
    patch, topo = _fit_topology(spacing, shaped(REF_VOLUME[dim]), kernel_size)
    reference = _fit_topology(spacing, shaped(VARIANT_REF_VOLUME[dim]), kernel_size)[0]
    budget = budget_gb * 2 ** 30
    kw = dict(in_channels=in_channels, num_classes=num_classes)
    fits = lambda p, t: max_batch_size(variant, p, budget, strides=t.strides, kernel_sizes=t.kernel_sizes, **kw)  # noqa: E731
    for _ in range(1000):  # each pass shrinks one side: bounded by the patch's size
        if fits(patch, topo) >= 2:
            break
        steps = topo.total_strides
        ratios = [p / m if p - t >= MIN_PATCH_SIDE else -1 for p, m, t in zip(patch, median, steps)]
        if max(ratios) < 0:
            break  # the smallest patch; the budget is simply too small
        axis = int(np.argmax(ratios))
        patch[axis] -= steps[axis]
        patch, topo = _fit_topology(spacing, patch, kernel_size)
    cap = int(round(BATCH_CAP_FRACTION * dataset_voxels / np.prod(patch, dtype=float)))
    return _Patch(patch, max(min(fits(patch, topo), cap), 2), reference, topo)


def choose_variant(units: float, plan_for, forced: str | None, notes: list[str], tag: str) -> tuple[str, _Patch]:
    if forced:
        notes.append(f"{tag}: variant {forced} forced by -m")
        return forced, plan_for(forced)
    allowed = [v for v in VARIANT_ORDER if units >= DATA_UNITS_FOR[v]]
    for v in allowed:
        p = plan_for(v)
        kept = min(1.0, np.prod(p.patch, dtype=float) / np.prod(p.reference, dtype=float))
        if v == "S" or kept >= MIN_PATCH_FRACTION:
            notes.append(f"{tag}: variant {v}: dataset size {units:.1f} x 128^3 voxels allows up to {allowed[0]}; "
                         f"{v} keeps {kept:.0%} of the reference patch {p.reference} within the budget")
            return v, p
        notes.append(f"{tag}: variant {v} rejected, the budget leaves only {kept:.0%} of patch {p.reference}")
    raise AssertionError("S is always accepted")


def plan_experiment(dataset_name: str, fp: Fingerprint, dataset: DatasetJson,
                    options: PlannerOptions | None = None) -> Plans:
    opt = options or PlannerOptions()
    notes = list(opt.notes)
    n = len(fp.case_ids)
    if opt.spacing:
        full_sp = [float(s) for s in opt.spacing]
        notes.append(f"target spacing {full_sp} (file order) set by --spacing")
    else:
        full_sp = target_spacing(fp.spacings, fp.shapes_after_crop)
        notes.append(f"target spacing {[round(s, 4) for s in full_sp]} (file order): median of the case spacings"
                     " with nnU-Net's anisotropy rule")
    notes.append(TOPOLOGY_RULE)
    fwd, bwd = transpose_for(full_sp)
    t = lambda v: [v[a] for a in fwd]  # noqa: E731
    median_full = t(median_shape_at(fp.spacings, fp.shapes_after_crop, full_sp))
    dataset_voxels = n * float(np.prod(median_full))
    units = dataset_voxels / 128 ** 3
    kernel = opt.kernel_size or 3
    schemes = [scheme_for_channel(c) for c in dataset.channel_name_list]
    mask = [s == "zscore" and fp.median_relative_size_after_cropping < 0.75 for s in schemes]
    common = dict(in_channels=dataset.num_channels, num_classes=num_outputs(dataset))

    def make(name: str, spacing: list[float], median: list[int], notes: list[str] = notes) -> Configuration:
        plan_for = lambda v: plan_patch(v, spacing, median, dataset_voxels, opt.gpu_memory_gb, kernel, **common)  # noqa: E731
        variant, p = choose_variant(units, plan_for, opt.variant, notes, name)
        notes.append(f"{name}: topology: {p.topology.describe(spacing, p.patch)}")
        notes.append(f"{name}: patch {p.patch} (multiples of the per-axis total stride "
                     f"{p.topology.total_strides}), batch {p.batch} (>= 2, <= {BATCH_CAP_FRACTION:.0%} of the "
                     f"dataset's voxels) for {opt.gpu_memory_gb} GB")
        return Configuration(
            name=name, dim=len(spacing), spacing=[float(s) for s in spacing], patch_size=p.patch,
            batch_size=int(p.batch), median_image_size=[int(m) for m in median], normalization=schemes,
            use_mask_for_norm=mask, network=NetworkPlan(variant=variant, kernel_size=kernel,
                                                        checkpointing=get_variant(variant).checkpointing,
                                                        strides=p.topology.strides,
                                                        kernel_sizes=p.topology.kernel_sizes),
            data_identifier=f"{PLANS_NAME}_{name}", batch_dice=True, mirror_axes=list(range(len(spacing))),
            anisotropy_threshold=ANISOTROPY_THRESHOLD)

    configs: dict[str, Configuration] = {}
    sp_t = t(full_sp)
    if median_full[0] > 1 and not fp.is_2d:
        full = make("3d_fullres", sp_t, median_full)
        configs["3d_fullres"] = full
        low = _plan_lowres(fp, full, full_sp, fwd, make, notes, opt.force_lowres)
        if low is not None:
            configs["3d_lowres"] = low
            low.batch_dice = False
        else:
            full.batch_dice = False
        add_cascade(configs, notes)
    else:
        notes.append("2D data: no 3D configurations")
    configs["2d"] = make("2d", sp_t[1:], median_full[1:])
    return Plans(dataset_name=dataset_name, plans_name=PLANS_NAME, transpose_forward=fwd, transpose_backward=bwd,
                 original_median_spacing=t([float(v) for v in np.median(fp.spacings, 0)]),
                 original_median_shape=t([int(v) for v in np.median(fp.shapes_after_crop, 0)]),
                 foreground_intensity_properties=dict(fp.foreground_intensity_properties),
                 configurations=configs, gpu_memory_gb=opt.gpu_memory_gb, planner_notes=notes)


def _plan_lowres(fp: Fingerprint, full: Configuration, full_sp: list[float], fwd: list[int], make,
                 notes: list[str], forced: bool = False) -> Configuration | None:
    """``forced``: plan it even when the fullres patch covers the image; the spacing then grows
    until the median image has half the fullres voxels."""
    median_vox = float(np.prod(full.median_image_size))
    if not forced and np.prod(full.patch_size) >= LOWRES_COVERAGE * median_vox:
        notes.append("3d_lowres: not needed, the fullres patch covers >= 25% of the median image")
        return None
    sp = np.asarray(full_sp, float)
    for _ in range(200):
        scale = sp.max() / sp > 2
        sp = sp * np.where(scale if scale.any() else True, 1.03, 1.0)
        median = [median_shape_at(fp.spacings, fp.shapes_after_crop, sp)[a] for a in fwd]
        if median_vox / np.prod(median) >= (2 if forced else 8):
            break  # the patch at this spacing can only cover more; stop searching here
        if forced:
            continue  # only the halving above ends a forced search
        probe = make("3d_lowres", [sp[a] for a in fwd], median, [])
        if np.prod(probe.patch_size) >= LOWRES_COVERAGE * np.prod(median):
            break
    median = [median_shape_at(fp.spacings, fp.shapes_after_crop, sp)[a] for a in fwd]
    if median_vox / np.prod(median) < 2:
        notes.append(f"3d_lowres: dropped, spacing {[round(float(sp[a]), 4) for a in fwd]} would not halve the "
                     "median image")
        return None
    why = "forced by --lowres, halving the median image" if forced else "so the patch covers >= 25%"
    notes.append(f"3d_lowres: spacing {[round(float(sp[a]), 4) for a in fwd]} {why}")
    return make("3d_lowres", [float(sp[a]) for a in fwd], median)
