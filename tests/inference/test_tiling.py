import math

import numpy as np
import pytest
import torch

from mednext_fw.inference.gaussian import gaussian_importance_map
from mednext_fw.inference.tiling import compute_steps, iter_tiles, num_tiles, pad_to_at_least, weight_sum_profiles


@pytest.mark.parametrize("size,patch,step", [((181, 217, 181), (128, 128, 128), 0.5), ((300, 512, 512), (96, 160, 160), 0.5),
                                             ((40, 33, 64), (32, 32, 64), 0.5), ((50, 70), (16, 32), 0.25),
                                             ((100,), (30,), 1.0)])
def test_steps_cover_everything_with_bounded_stride(size, patch, step):
    steps = compute_steps(size, patch, step)
    for s, p, st in zip(size, patch, steps):
        assert len(st) == math.ceil((s - p) / (p * step)) + 1
        assert st[0] == 0 and st[-1] == s - p
        assert all(0 < b - a <= math.ceil(p * step) for a, b in zip(st, st[1:]))
    covered = np.zeros(size, int)
    for sl in iter_tiles(steps, patch):
        covered[sl] += 1
    assert covered.min() >= 1
    assert num_tiles(steps) == len(list(iter_tiles(steps, patch)))


def test_known_grid_and_refusals():
    assert compute_steps([181, 217, 181], [128] * 3) == [[0, 53], [0, 44, 89], [0, 53]]
    assert compute_steps([128], [128]) == [[0]]
    with pytest.raises(ValueError, match="smaller than the patch"):
        compute_steps([100], [128])
    with pytest.raises(ValueError, match="step_size"):
        compute_steps([200], [128], 0)


def test_separable_weight_sum_equals_accumulated_map():
    size, patch = (37, 29, 45), (16, 16, 24)
    steps = compute_steps(size, patch, 0.5)
    full = torch.zeros(size, dtype=torch.float64)
    g = gaussian_importance_map(patch, dtype=torch.float64)
    for sl in iter_tiles(steps, patch):
        full[sl] += g
    wz, wy, wx = weight_sum_profiles(size, patch, steps)
    np.testing.assert_allclose(full.numpy(), wz[:, None, None] * wy[None, :, None] * wx[None, None, :], rtol=1e-12)


def test_pad_to_at_least_centres_and_reverts():
    x = torch.arange(2 * 5 * 7 * 9, dtype=torch.float32).reshape(2, 5, 7, 9)
    padded, unpad = pad_to_at_least(x, (8, 7, 12))
    assert padded.shape == (2, 8, 7, 12)
    assert torch.equal(padded[unpad], x)
    assert padded[:, 0].abs().sum() == 0 and padded[:, -2:].abs().sum() == 0  # 3 -> 1 before, 2 after
    same, unpad = pad_to_at_least(x, (4, 4, 4))
    assert same is x and torch.equal(same[unpad], x)
