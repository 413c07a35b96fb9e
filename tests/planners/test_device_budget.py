"""Plans meet the machine: GPU free memory (faked device query), the CPU plan and its reasons."""
import numpy as np
import pytest

from mednext_fw.devices import DeviceError
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.labels import num_outputs
from mednext_fw.planners.device_budget import (CPU_STEP_TARGET_S, DeviceBudget, cpu_step_seconds, detect_budget,
                                               fit_plans_to_cpu, plan_cpu_configuration)
from mednext_fw.planners.fingerprint import extract_fingerprint
from mednext_fw.planners.planner import PlannerOptions, plan_experiment

GIB = 2 ** 30


@pytest.fixture(scope="module")
def brain_fp(shared_data):
    d = shared_data / "Dataset001_BrainMask"
    ds = DatasetJson.load(d / "dataset.json")
    return extract_fingerprint(d, ds, 2), ds


def test_gpu_budget_is_the_free_memory_minus_the_margin():
    budget = detect_budget("auto", resolve=lambda d: "cuda", gpu_query=lambda i: (20 * GIB, 24 * GIB), cores=8)
    assert budget.device == "cuda" and budget.memory_gb == pytest.approx(17.6)
    assert "20.0 of 24.0 GiB free" in budget.notes[0]
    with pytest.raises(DeviceError, match="only 1.0 of 24.0 GiB free"):
        detect_budget("cuda", resolve=lambda d: "cuda", gpu_query=lambda i: (1 * GIB, 24 * GIB), cores=8)
    forced = detect_budget("auto", gpu_memory_gb=11, resolve=lambda d: "cpu", cores=2)
    assert (forced.device, forced.memory_gb) == ("cuda", 11) and "--gpu-memory-gb" in forced.notes[0]


def test_gpu_planning_uses_the_detected_memory(brain_fp):
    """A 40 GB card left with 30 GB free plans a larger patch than the old fixed 8 GB."""
    fp, ds = brain_fp
    big = detect_budget("auto", resolve=lambda d: "cuda", gpu_query=lambda i: (30 * GIB, 40 * GIB), cores=8)
    plans = plan_experiment("Dataset001_BrainMask", fp, ds, PlannerOptions(gpu_memory_gb=big.memory_gb,
                                                                           notes=big.notes))
    eight = plan_experiment("Dataset001_BrainMask", fp, ds, PlannerOptions(gpu_memory_gb=8.0))
    patch = lambda p: np.prod(p.configurations["3d_fullres"].patch_size)  # noqa: E731
    assert plans.gpu_memory_gb == pytest.approx(26.0) and patch(plans) > patch(eight)
    assert any("GPU: 30.0 of 40.0 GiB free" in n for n in plans.planner_notes)


def test_cpu_budget_from_ram():
    b = detect_budget("cpu", ram_gb=24.0, cores=2)
    assert (b.device, b.memory_gb, b.cores, b.threads) == ("cpu", 12.0, 2, 1)
    assert "no GPU: planned for the CPU" in b.notes[0]


def test_cpu_plan_for_dataset001(brain_fp):
    """2 cores (1 training thread): 2 mm is too slow at any width with a patch covering 25% of the image;
    4 mm with width 8 and a 32^3 patch is the first choice that fits 0.5 s per step."""
    fp, ds = brain_fp
    budget = detect_budget("cpu", ram_gb=24.0, cores=2)
    plans = plan_experiment("Dataset001_BrainMask", fp, ds, PlannerOptions(gpu_memory_gb=budget.memory_gb))
    fit_plans_to_cpu(plans, fp, budget, ds.num_channels, num_outputs(ds))
    full = plans.configurations["3d_fullres"]
    assert full.spacing == [4.0, 4.0, 4.0] and full.patch_size == [32, 32, 32] and full.batch_size == 2
    assert full.network.variant == "S" and full.network.kwargs == {"n_channels": 8}
    assert full.median_image_size == [45, 54, 45] and full.extra["planned_for"] == "cpu"
    assert "3d_lowres" not in plans.configurations and "2d" in plans.configurations
    assert cpu_step_seconds(8, [32] * 3, 2, 1, 1, 2) <= CPU_STEP_TARGET_S
    assert any("CPU 3d_fullres: spacing [4.0, 4.0, 4.0], width 8, patch [32, 32, 32]" in n for n in plans.planner_notes)


def test_cpu_plan_grows_with_cores_and_time():
    median_at = lambda sp: [round(180 / s) for s in sp]  # noqa: E731  (a 180 mm cube)
    small = plan_cpu_configuration([1.0] * 3, median_at, threads=1, target_s=0.5, in_channels=1, num_classes=2)
    many = plan_cpu_configuration([1.0] * 3, median_at, threads=16, target_s=0.5, in_channels=1, num_classes=2)
    patient = plan_cpu_configuration([1.0] * 3, median_at, threads=1, target_s=30.0, in_channels=1, num_classes=2)
    for c in (small, many, patient):
        assert c.coverage >= 0.25 and c.step_s <= (30.0 if c is patient else 0.5)
    assert many.spacing[0] < small.spacing[0] and patient.spacing[0] < small.spacing[0]
    assert patient.width >= small.width


def test_time_budget_sets_the_step_target():
    assert DeviceBudget("cpu", 8, 2, 1).cpu_step_target_s() == CPU_STEP_TARGET_S
    assert DeviceBudget("cpu", 8, 2, 1, time_budget_s=12 * 3600).cpu_step_target_s() == pytest.approx(34.56)
    assert DeviceBudget("cpu", 8, 2, 1, time_budget_s=60).cpu_step_target_s() == 0.1
