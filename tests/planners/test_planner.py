"""Planned values against hand-worked expectations (Dataset001, an anisotropic copy, 2D, synthetic)."""
import numpy as np
import pytest
import SimpleITK as sitk

from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.planners.fingerprint import Fingerprint, extract_fingerprint
from mednext_fw.planners.memory_model import training_memory_bytes
from mednext_fw.planners.planner import PlannerOptions, plan_experiment
from mednext_fw.planners.plans import IntensityStats, Plans

GiB = 2 ** 30


@pytest.fixture(scope="module")
def brain_fp(shared_data):
    d = shared_data / "Dataset001_BrainMask"
    ds = DatasetJson.load(d / "dataset.json")
    return extract_fingerprint(d, ds, 2), ds


def test_dataset001(brain_fp, tmp_path):
    fp, ds = brain_fp
    plans = plan_experiment("Dataset001_BrainMask", fp, ds)
    full = plans.configurations["3d_fullres"]
    # spacings 1,2,1,2,3 mm -> median 2 mm; no axis is anisotropic.
    assert full.spacing == [2.0, 2.0, 2.0] and plans.transpose_forward == [0, 1, 2]
    # per-case shapes after crop at 2 mm: medians (90, 108, 90)
    assert full.median_image_size == [90, 108, 90]
    # 1/spacing is isotropic (256^3 start) -> clipped to the median [90, 108, 90]; every side >= 64 allows
    # the reference topology (4 x stride 2, total 16): rounded up to [96, 112, 96]. S does not fit batch 2
    # in 8 GB there; shrink the side with the largest patch/median ratio (96/90, axis 0 first) by 16 -> fits.
    assert full.network.strides == [[2, 2, 2]] * 4 and full.network.kernel_sizes == [[3, 3, 3]] * 5
    assert training_memory_bytes("S", [96, 112, 96], 2) > 8 * GiB
    assert training_memory_bytes("S", [80, 112, 96], 2) <= 8 * GiB
    assert full.patch_size == [80, 112, 96]
    # 5% cap: 0.05 * 5 * 90*108*90 / (80*112*96) = 0.25 -> raised to the minimum 2
    assert full.batch_size == 2
    # 5 cases x 874800 voxels = 2.1 units of 128^3 < 50 -> S, kernel 3, no checkpointing
    assert (full.network.variant, full.network.kernel_size, full.network.checkpointing) == ("S", 3, False)
    assert "3d_lowres" not in plans.configurations  # the patch covers 72% of the median image
    two = plans.configurations["2d"]
    # 2d: [108, 90] -> [112, 96]; 5% cap = round(0.05 * 5 * 874800 / (112*96)) = 20
    assert (two.spacing, two.patch_size, two.batch_size) == ([2.0, 2.0], [112, 96], 20)
    assert full.normalization == ["zscore"] and full.use_mask_for_norm == [False]  # T1; crop keeps 97%
    assert full.data_identifier == "mednextPlans_3d_fullres" and full.mirror_axes == [0, 1, 2]
    assert any("variant S" in n for n in plans.planner_notes)
    plans.save(tmp_path / "plans.json")
    assert Plans.load(tmp_path / "plans.json") == plans


def test_overrides(brain_fp):
    fp, ds = brain_fp
    plans = plan_experiment("x", fp, ds, PlannerOptions(spacing=[1.0, 1.0, 1.0], variant="L", kernel_size=5,
                                                        gpu_memory_gb=24))
    full = plans.configurations["3d_fullres"]
    assert full.spacing == [1.0, 1.0, 1.0] and full.median_image_size == [181, 216, 180]
    assert (full.network.variant, full.network.kernel_size, full.network.checkpointing) == ("L", 5, True)
    assert all(p % 16 == 0 for p in full.patch_size) and full.batch_size >= 2
    assert full.network.kernel_sizes[0] == [5, 5, 5]
    assert training_memory_bytes("L", full.patch_size, 2, strides=full.network.strides,
                                 kernel_sizes=full.network.kernel_sizes) <= 24 * GiB


def test_anisotropic_5mm_slices(tmp_path, shared_data):
    """Real volumes resampled to thick slices (7, 7, 6.5 mm): the slice axis gets the 10th percentile."""
    src = shared_data / "Dataset001_BrainMask"
    spacings, shapes = [], []
    for case, z in [("colin27_2mm", 7.0), ("mni152_2mm", 7.0), ("mni152_3mm", 6.5)]:
        img = sitk.ReadImage(str(src / "imagesTr" / f"{case}_0000.nii.gz"))
        size = [img.GetSize()[0], img.GetSize()[1], int(round(img.GetSize()[2] * img.GetSpacing()[2] / z))]
        out = sitk.Resample(img, size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(),
                            (img.GetSpacing()[0], img.GetSpacing()[1], z), img.GetDirection())
        spacings.append(list(out.GetSpacing())[::-1])
        shapes.append(list(out.GetSize())[::-1])
    ds = DatasetJson.from_dict({"channel_names": {"0": "CT"}, "labels": {"background": 0, "b": 1},
                                "numTraining": 3, "file_ending": ".nii.gz"})
    stats = IntensityStats(0, 1, 0, -1, 1, -1, 1)
    fp = Fingerprint(["a", "b", "c"], spacings, shapes, [1.0] * 3, {"0": stats})
    plans = plan_experiment("aniso", fp, ds)
    full = plans.configurations["3d_fullres"]
    # median z spacing 7 > 3 x 2 mm (median in-plane) and 3 x 26 slices < 90 -> 10th percentile 6.6
    assert full.spacing == pytest.approx([6.6, 2.0, 2.0])
    assert full.normalization == ["ct"]
    # 6.6 mm vs 2 mm: the slice axis is kept (stride 1, kernel 1) at the first stage
    assert full.network.strides[0] == [1, 2, 2] and full.network.kernel_sizes[0] == [1, 3, 3]
    assert full.patch_size[0] < full.patch_size[1]
    assert full.batch_size >= 2 and full.network.variant == "S"
    assert plans.configurations["2d"].spacing == [2.0, 2.0]


def test_variant_grows_with_data_and_budget():
    """Synthetic fingerprints: 300 cases of 256^3 = 2400 units allow L; the budget decides."""
    ds = DatasetJson.from_dict({"channel_names": {"0": "CT"}, "labels": {"background": 0, "b": 1},
                                "numTraining": 300, "file_ending": ".nii.gz"})
    stats = IntensityStats(0, 1, 0, -1, 1, -1, 1)
    n = 300
    fp = Fingerprint([f"c{i}" for i in range(n)], [[1.0] * 3] * n, [[256] * 3] * n, [1.0] * n, {"0": stats})
    small = plan_experiment("x", fp, ds, PlannerOptions(gpu_memory_gb=8)).configurations["3d_fullres"]
    big = plan_experiment("x", fp, ds, PlannerOptions(gpu_memory_gb=80)).configurations["3d_fullres"]
    order = "SBML"
    assert order.index(big.network.variant) > order.index(small.network.variant)
    assert np.prod(big.patch_size) >= np.prod(small.patch_size)
    few = Fingerprint(fp.case_ids[:10], fp.spacings[:10], fp.shapes_after_crop[:10], [1.0] * 10, {"0": stats})
    assert plan_experiment("x", few, ds, PlannerOptions(gpu_memory_gb=80)).configurations[
        "3d_fullres"].network.variant == "B"  # 10 x 8 = 80 units: the data allow B at most
