"""The planned MedNeXt topology: isotropic -> the reference; thick slices -> [1, 2, 2] strides and
[1, 3, 3] kernels until the spacings are comparable; impossible hand edits refused by key."""
import json

import pytest

from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.network_architectures.mednext import create_mednext
from mednext_fw.planners.fingerprint import Fingerprint, extract_fingerprint
from mednext_fw.planners.plans import IntensityStats, PlanEditError, Plans
from mednext_fw.planners.planner import PlannerOptions, plan_experiment
from mednext_fw.planners.topology import plan_topology, round_patch

REF_STRIDES = [[2, 2, 2]] * 4
REF_KERNELS = [[3, 3, 3]] * 5


def test_rule_isotropic_is_the_reference():
    t = plan_topology([1.0, 1.0, 1.0], [128, 128, 128])
    assert (t.strides, t.kernel_sizes) == (REF_STRIDES, REF_KERNELS)
    assert plan_topology([1.0] * 3, [64] * 3, 5).kernel_sizes == [[5, 5, 5]] * 5
    # a small axis stops being downsampled once its map would drop below 4 voxels
    t = plan_topology([1.0] * 3, [48, 128, 128])
    assert t.strides == [[2, 2, 2]] * 3 + [[1, 2, 2]] and t.bottleneck_size([48, 128, 128]) == [6, 8, 8]
    # a small patch gets fewer levels
    assert len(plan_topology([1.0, 1.0], [24, 24]).strides) == 2


def test_rule_thick_slices():
    t = plan_topology([6.0, 1.0, 1.0], [16, 224, 192])
    assert t.strides == [[1, 2, 2], [1, 2, 2], [2, 2, 2], [2, 2, 2]]
    assert t.kernel_sizes == [[1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]
    assert t.total_strides == [4, 16, 16] and t.bottleneck_size([16, 224, 192]) == [4, 14, 12]
    # 5 mm CT at 0.6 mm in-plane: 3 in-plane-only stages, then the spacings are within 2x
    t = plan_topology([5.0, 0.6, 0.6], [16, 208, 224])
    assert t.strides == [[1, 2, 2]] * 3 + [[2, 2, 2]]
    assert t.kernel_sizes == [[1, 3, 3]] * 3 + [[3, 3, 3]] * 2
    assert round_patch([13.2, 200.5, 224], t) == [14, 208, 224]


@pytest.fixture(scope="module")
def thick_plans(shared_data):
    d = shared_data / "Dataset003_BrainMaskThick"
    ds = DatasetJson.load(d / "dataset.json")
    return plan_experiment("Dataset003_BrainMaskThick", extract_fingerprint(d, ds, 2), ds)


def test_dataset003_plans_an_anisotropic_topology(thick_plans, tmp_path):
    full = thick_plans.configurations["3d_fullres"]
    assert full.spacing == [6.0, 1.0, 1.0]
    net = full.network
    assert net.strides[:2] == [[1, 2, 2], [1, 2, 2]] and net.kernel_sizes[:2] == [[1, 3, 3], [1, 3, 3]]
    assert all(k == [3, 3, 3] for k in net.kernel_sizes[2:])  # 6 mm vs 4 mm: comparable from level 2
    totals = [1, 1, 1]
    for s in net.strides:
        totals = [t * v for t, v in zip(totals, s)]
    assert all(p % t == 0 for p, t in zip(full.patch_size, totals))
    assert full.patch_size[0] // totals[0] >= 4  # the slice axis keeps >= 4 voxels at the bottleneck
    assert any(n.startswith("topology rule: ") for n in thick_plans.planner_notes)
    assert any("3d_fullres: topology" in n and "axis 0 (6 mm)" in n and "kernel 1" in n
               for n in thick_plans.planner_notes)
    two = thick_plans.configurations["2d"]
    assert two.network.strides == [[2, 2]] * 4 and two.network.kernel_sizes == [[3, 3]] * 5
    thick_plans.save(tmp_path / "plans.json")
    saved = json.loads((tmp_path / "plans.json").read_text())["configurations"]["3d_fullres"]["network"]
    assert saved["strides"] == net.strides and saved["kernel_sizes"] == net.kernel_sizes
    assert Plans.load(tmp_path / "plans.json") == thick_plans
    # the planned network builds and runs on the planned patch's divisors
    built = create_mednext(net.variant, 1, 2, n_channels=4, block_counts=1, strides=net.strides,
                           kernel_sizes=net.kernel_sizes, deep_supervision=True)
    assert built.input_divisor == totals


def test_ct_like_fingerprint():
    ds = DatasetJson.from_dict({"channel_names": {"0": "CT"}, "labels": {"background": 0, "b": 1},
                                "numTraining": 20, "file_ending": ".nii.gz"})
    stats = IntensityStats(0, 1, 0, -1, 1, -1, 1)
    n = 20
    fp = Fingerprint([f"c{i}" for i in range(n)], [[5.0, 0.6, 0.6]] * n, [[60, 512, 512]] * n, [1.0] * n,
                     {"0": stats})
    plans = plan_experiment("ct", fp, ds)
    full = plans.configurations["3d_fullres"]
    assert full.network.strides[0] == [1, 2, 2] and full.network.kernel_sizes[0] == [1, 3, 3]
    slice_stride = 1
    for s in full.network.strides:
        slice_stride *= s[0]
    assert full.patch_size[0] // slice_stride >= 4
    assert full.patch_size[0] % slice_stride == 0 and full.patch_size[1] % 16 == 0


def test_isotropic_1mm_plan_is_the_reference(shared_data):
    d = shared_data / "Dataset001_BrainMask"
    ds = DatasetJson.load(d / "dataset.json")
    plans = plan_experiment("x", extract_fingerprint(d, ds, 2), ds, PlannerOptions(spacing=[1.0, 1.0, 1.0]))
    net = plans.configurations["3d_fullres"].network
    assert (net.strides, net.kernel_sizes) == (REF_STRIDES, REF_KERNELS)
    builder = dict(strides=net.strides, kernel_sizes=net.kernel_sizes, deep_supervision=True)
    planned = create_mednext("S", 1, 14, **builder)
    assert sum(p.numel() for p in planned.parameters()) == 5_564_806  # the reference S-k3 count


def _edited(plans: Plans, tmp_path, edit) -> str:
    d = plans.to_dict()
    edit(d["configurations"]["3d_fullres"])
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(d))
    with pytest.raises(PlanEditError) as info:
        Plans.load(path)
    return str(info.value)


def test_impossible_hand_edits_are_refused_by_key(thick_plans, tmp_path):
    key = "configurations.3d_fullres"

    def odd_patch(c):
        c["patch_size"][1] += 8

    msg = _edited(thick_plans, tmp_path, odd_patch)
    assert f"{key}.patch_size" in msg and "not a multiple of 16" in msg

    def stride3(c):
        c["network"]["strides"][0] = [1, 3, 2]

    assert f"{key}.network.strides[0] = [1, 3, 2]: every stride must be 1 or 2" in _edited(thick_plans, tmp_path,
                                                                                             stride3)

    def short(c):
        c["network"]["kernel_sizes"] = c["network"]["kernel_sizes"][:-1]

    assert f"{key}.network.kernel_sizes: needs" in _edited(thick_plans, tmp_path, short)

    def two_axes(c):
        c["network"]["strides"][1] = [2, 2]

    assert f"{key}.network.strides[1] = [2, 2]: needs 3 values" in _edited(thick_plans, tmp_path, two_axes)

    def kernel5(c):
        c["network"]["kernel_size"] = 5

    assert f"{key}.network.kernel_size = 5 disagrees" in _edited(thick_plans, tmp_path, kernel5)


def test_possible_hand_edit_and_kernel_override(thick_plans):
    cfg = thick_plans.configurations["3d_fullres"].network
    from dataclasses import replace

    edited = replace(cfg, strides=[list(s) for s in cfg.strides], kernel_sizes=[list(k) for k in cfg.kernel_sizes])
    edited.with_kernel_size(5)
    assert edited.kernel_sizes[0] == [1, 5, 5] and edited.kernel_size == 5
