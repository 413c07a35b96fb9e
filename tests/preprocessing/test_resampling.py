import numpy as np
import pytest
from scipy import ndimage
from skimage.transform import resize

from mednext_fw.planners.spacing import new_shape as compute_new_shape
from mednext_fw.preprocessing.resampling import resample_data, resample_rows, separate_z_axis

RNG = np.random.default_rng(0)
IMG = ndimage.gaussian_filter(RNG.normal(size=(14, 18, 16)), 2).astype(np.float32)
SEG = (ndimage.gaussian_filter(RNG.normal(size=(14, 18, 16)), 2) * 40).round().clip(-1, 3).astype(np.int16)


@pytest.mark.parametrize("shape", [(28, 36, 32), (7, 9, 8), (14, 25, 11)])
def test_image_matches_skimage_order3(shape):
    ours = resample_data(IMG[None], shape, [1, 1, 1], [1, 1, 1], order=3)
    ref = resize(IMG.astype(np.float64), shape, order=3, mode="edge", anti_aliasing=False)
    assert ours.dtype == np.float32 and ours.shape == (1, *shape)
    assert np.abs(ours[0] - ref).max() < 1e-5


@pytest.mark.parametrize("shape", [(28, 36, 32), (7, 9, 8), (21, 12, 16)])
def test_labels_match_one_hot_order1(shape):
    ours = resample_data(SEG[None], shape, [1, 1, 1], [1, 1, 1], order=1, is_seg=True)[0]
    ref = np.zeros(shape, np.int16)
    for c in np.unique(SEG):  # nnU-Net's rule: one-hot, linear, >= 0.5, ascending
        ref[resize((SEG == c).astype(float), shape, order=1, mode="edge", anti_aliasing=False) >= 0.5] = c
    assert ours.dtype == np.int16
    assert (ours != ref).mean() < 1e-3  # only float32-vs-float64 rounding at exact 0.5 ties


def test_separate_z_uses_nearest_slices():
    spacing, target = [5.0, 1.0, 1.0], [2.5, 0.5, 0.5]
    assert separate_z_axis(spacing, target) == 0 and separate_z_axis([1, 1, 1], [2, 2, 2]) is None
    shape = compute_new_shape(IMG.shape, spacing, target)
    out = resample_data(IMG[None], shape, spacing, target, order=3)[0]
    inplane = resize(IMG.astype(np.float64), (14, 36, 32), order=3, mode="edge", anti_aliasing=False)
    # z is nearest neighbour: slice i of the output is input slice round(i/2 - 0.25), i.e. each twice
    assert np.abs(out[0::2] - inplane).max() < 1e-5 and np.abs(out[1::2] - inplane).max() < 1e-5


def test_unchanged_shape_is_identity():
    assert resample_data(IMG[None], IMG.shape, [1, 1, 1], [1, 1, 1], 3) is not None
    assert np.array_equal(resample_data(SEG[None], SEG.shape, [1, 1, 1], [1, 1, 1], 1, is_seg=True)[0], SEG)


@pytest.mark.parametrize("shape, new, spacing, new_spacing", [
    ((8, 15, 15), (20, 30, 30), (12.5, 2, 2), (5, 1, 1)),  # anisotropic: nearest along the slices
    ((20, 13, 17), (9, 26, 17), (1, 2, 1), (2.2, 1, 1)),  # axis 0 shrinks, one axis unchanged
    ((10, 12, 14), (10, 7, 30), (1, 1, 1), (1, 1.7, 0.47)),  # axis 0 unchanged
])
@pytest.mark.parametrize("step", [1, 3, 8])
def test_rows_are_bit_identical_to_the_full_resampling(shape, new, spacing, new_spacing, step):
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    full = resample_data(x[None], new, spacing, new_spacing, order=1, order_z=0)[0]
    rows = [resample_rows(x, new, spacing, new_spacing, slice(a, a + step)) for a in range(0, new[0], step)]
    np.testing.assert_array_equal(np.concatenate(rows), full)


def test_rows_refuse_splines():
    with pytest.raises(ValueError, match="orders 0 and 1"):
        resample_rows(np.zeros((4, 4, 4), np.float32), (8, 8, 8), (1, 1, 1), (0.5, 0.5, 0.5), slice(0, 2), order=3)
