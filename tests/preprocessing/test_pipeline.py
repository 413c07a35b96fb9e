import numpy as np
import pytest

from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import ImageProperties
from mednext_fw.planners.plans import Configuration, IntensityStats, Plans
from mednext_fw.preprocessing import CaseProperties, preprocess_case
from mednext_fw.preprocessing.class_locations import sample_class_locations
from mednext_fw.planners.cropping import crop_to_nonzero
from mednext_fw.planners.normalization_choice import scheme_for_channel
from mednext_fw.preprocessing.normalization import normalize_channel

DS = DatasetJson.from_dict({"channel_names": {"0": "MRI"}, "labels": {"background": 0, "a": 1, "b": 2},
                            "numTraining": 1, "file_ending": ".nii.gz"})


def _case():
    data = np.zeros((1, 10, 12, 14), np.float32)
    data[0, 2:9, 3:11, 1:13] = np.arange(7 * 8 * 12).reshape(7, 8, 12) + 1
    data[0, 5, 6, 7] = 0  # a hole: filled, so it stays inside the mask
    seg = np.zeros((1, 10, 12, 14), np.int16)
    seg[0, 4:6, 5:8, 3:9] = 1
    seg[0, 7, 8, 10] = 2
    return data, seg


def test_crop_and_mask():
    data, seg = _case()
    d, s, box, mask = crop_to_nonzero(data, seg)
    assert box == [[2, 9], [3, 11], [1, 13]] and d.shape == (1, 7, 8, 12) and mask.all()
    data[0, 2, 3, 1] = 0
    _, s, _, mask = crop_to_nonzero(data, seg)
    assert s[0, 0, 0, 0] == -1 and not mask[0, 0, 0]


def test_normalisation():
    assert [scheme_for_channel(n) for n in ["CT", "ct", "T1", "noNorm", "rgb_to_0_1"]] == \
        ["ct", "ct", "zscore", "none", "rgb_0_1"]
    x = np.arange(10, dtype=np.float32)
    z = normalize_channel(x.copy(), "zscore")
    assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-5
    ct = normalize_channel(x.copy(), "ct", stats=IntensityStats(4, 2, 4, 0, 9, 1, 8))
    assert ct.min() == pytest.approx(-1.5) and ct.max() == pytest.approx(2.0)
    m = np.array([True] * 5 + [False] * 5)
    zm = normalize_channel(x.copy(), "zscore", mask=m)
    assert (zm[5:] == 0).all() and abs(zm[:5].mean()) < 1e-6


def test_class_locations():
    _, seg = _case()
    loc = sample_class_locations(seg, [(1,), (2,), (1, 2)])
    assert len(loc["1"]) == 2 * 3 * 6 and loc["2"] == [[7, 8, 10]]
    assert len(loc["1,2"]) == 37 and all(seg[0][tuple(p)] == 1 for p in loc["1"])


def test_preprocess_case_transposed_and_resampled():
    data, seg = _case()
    plans = Plans("x", transpose_forward=[2, 0, 1], transpose_backward=[1, 2, 0])
    cfg = Configuration("3d_fullres", 3, [1.0, 1.0, 1.0], [16] * 3, 2, [12, 7, 8], ["zscore"], [False])
    props = ImageProperties(spacing=[1.0, 1.0, 0.5])
    d, s, cp = preprocess_case(data, props, seg, plans, cfg, DS, "c1")
    # transposed (X, Z, Y): 14 x 10 x 12 -> crop 12 x 7 x 8 -> X spacing 0.5 -> 1.0 halves it
    assert cp.shape_before_cropping == [14, 10, 12] and cp.shape_after_cropping == [12, 7, 8]
    assert cp.spacing == [0.5, 1.0, 1.0] and d.shape == (1, 6, 7, 8) and s.shape == (1, 6, 7, 8)
    assert d.dtype == np.float32 and s.dtype == np.int16 and d.flags.c_contiguous
    assert set(cp.class_locations) == {"1", "2"}
    assert CaseProperties.from_dict(cp.to_dict()) == cp
    d2, s2, _ = preprocess_case(data, props, None, plans, cfg, DS, "c1")  # inference path
    assert s2 is None and np.allclose(d2, d)
