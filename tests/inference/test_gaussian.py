import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from mednext_fw.inference.gaussian import gaussian_importance_map, gaussian_profile


@pytest.mark.parametrize("patch", [(32, 32, 32), (16, 24, 40), (7, 9, 12), (1, 16, 16)])
def test_map_matches_filtered_impulse_peak_one_positive(patch):
    g = gaussian_importance_map(patch).numpy()
    assert g.shape == patch and g.dtype == np.float32
    impulse = np.zeros(patch)
    impulse[tuple(s // 2 for s in patch)] = 1
    ref = gaussian_filter(impulse, [s / 8 for s in patch], 0, mode="constant", cval=0)
    ref /= ref.max()
    np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-12)
    assert g.max() == 1.0 and g[tuple(s // 2 for s in patch)] == 1.0
    assert g.min() > 0


def test_sigma_is_one_eighth_of_the_patch():
    p = gaussian_profile(64)
    # exp(-0.5) one sigma (= 8 voxels) from the centre
    assert p[32 + 8] == pytest.approx(np.exp(-0.5))
    assert p[32 - 16] == pytest.approx(np.exp(-2.0))


def test_profile_decreases_away_from_centre_and_dtype_device():
    p = gaussian_profile(33)
    assert np.all(np.diff(p[:17]) > 0) and np.all(np.diff(p[16:]) < 0)
    np.testing.assert_allclose(p, p[::-1])
    g = gaussian_importance_map((8, 8), dtype=torch.float64)
    assert g.dtype == torch.float64 and g.device.type == "cpu"
