import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from mednext_fw.evaluation import surface
from mednext_fw.evaluation.surface import surface_distances, surface_metrics


def _brute_force(ref, pred, spacing, tol):
    """Definition straight from the docstring, with explicit neighbour checks and all-pairs distances."""
    def surf(m):
        p = np.pad(m, 1)
        out = []
        for idx in np.argwhere(m):
            c = idx + 1
            nbrs = [p[tuple(c + d)] for d in np.vstack([np.eye(m.ndim, dtype=int), -np.eye(m.ndim, dtype=int)])]
            if not all(nbrs):
                out.append(idx)
        return np.array(out) * np.asarray(spacing)
    a, b = surf(ref), surf(pred)
    d = cdist(a, b)
    dab, dba = d.min(1), d.min(0)
    nsd = ((dab <= tol).sum() + (dba <= tol).sum()) / (len(dab) + len(dba))
    hd = max(np.percentile(dab, 95), np.percentile(dba, 95))
    return nsd, hd, np.concatenate([dab, dba]).mean()


def test_hand_worked_2d_squares():
    # 3x3 square vs the same square shifted right by one pixel, spacing 1 x 2 mm.
    ref = np.zeros((7, 7), bool)
    ref[2:5, 1:4] = True
    pred = np.roll(ref, 1, axis=1)
    # Both surfaces are 8-pixel rings (the centre pixel is interior). Per ring: 4 pixels coincide
    # with the other ring (0 mm); the right-middle pixel of ref, (3, 3), is 1 row = 1 mm from pred's
    # (2, 3); ref's left column is one column = 2 mm from pred's ring. pred mirrors this.
    d_ref, d_pred = surface_distances(ref, pred, (1.0, 2.0))
    assert sorted(d_ref) == [0.0] * 4 + [1.0] + [2.0] * 3
    assert sorted(d_pred) == [0.0] * 4 + [1.0] + [2.0] * 3
    m = surface_metrics(ref, pred, (1.0, 2.0), tolerance_mm=1.0)
    assert m["NSD"] == pytest.approx(10 / 16)
    assert m["ASSD"] == pytest.approx(14 / 16)
    assert m["HD95"] == pytest.approx(2.0)
    assert surface_metrics(ref, pred, (1.0, 2.0), tolerance_mm=2.0)["NSD"] == 1.0  # "within" is <=


def test_hand_worked_3d_cube_inside_cube():
    # 5^3 cube vs its 3^3 core: the core's surface is 26 voxels (its centre is interior), the cube's
    # is its 98-voxel shell, and every core-surface voxel has a shell voxel as face neighbour.
    ref = np.zeros((9, 9, 9), bool)
    ref[2:7, 2:7, 2:7] = True
    pred = np.zeros_like(ref)
    pred[3:6, 3:6, 3:6] = True
    d_ref, d_pred = surface_distances(ref, pred, (1.0, 1.0, 1.0))
    assert d_pred.size == 26 and d_ref.size == 125 - 27
    # Each core-surface voxel is exactly 1 voxel from the outer shell.
    assert np.all(d_pred == 1.0)
    assert surface_metrics(ref, pred, (1, 1, 1), 1.0)["HD95"] == pytest.approx(np.percentile(d_ref, 95))


def test_single_voxels_distance_is_euclidean_in_mm():
    ref = np.zeros((5, 5, 5), bool)
    pred = np.zeros_like(ref)
    ref[0, 0, 0] = True
    pred[2, 1, 0] = True
    m = surface_metrics(ref, pred, (3.0, 0.5, 1.0), tolerance_mm=6.0)
    expected = math.sqrt(6.0 ** 2 + 0.5 ** 2)
    assert m["HD95"] == pytest.approx(expected) and m["ASSD"] == pytest.approx(expected)
    assert m["NSD"] == 0.0  # 6.02 mm > 6 mm


def test_border_voxels_are_surface():
    full = np.ones((4, 4, 4), bool)
    d_ref, d_pred = surface_distances(full, full, (1, 1, 1))
    assert d_ref.size == 64 - 8  # the 2^3 core has all six neighbours inside


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.7, 1.3)])
def test_random_blobs_match_brute_force(spacing):
    rng = np.random.default_rng(0)
    from scipy import ndimage
    for _ in range(3):
        ref = ndimage.binary_opening(rng.random((14, 16, 15)) > 0.45)
        pred = ndimage.binary_opening(rng.random((14, 16, 15)) > 0.5)
        m = surface_metrics(ref, pred, spacing, tolerance_mm=1.5)
        nsd, hd, assd = _brute_force(ref, pred, spacing, 1.5)
        assert m["NSD"] == pytest.approx(nsd, abs=1e-12)
        assert m["HD95"] == pytest.approx(hd, rel=1e-12)
        assert m["ASSD"] == pytest.approx(assd, rel=1e-12)


def test_far_away_voxels_use_exact_fallback(monkeypatch):
    # A prediction blob 40 voxels away lies outside the offset ball, so the k-d tree answers.
    ref = np.zeros((3, 3, 60), bool)
    pred = np.zeros_like(ref)
    ref[1, 1, 2:5] = True
    pred[1, 1, 2:5] = True
    pred[1, 1, 50] = True
    d_ref, d_pred = surface_distances(ref, pred, (1.0, 1.0, 0.5))
    assert np.all(d_ref == 0)
    assert sorted(d_pred)[-1] == pytest.approx(46 * 0.5)
    # A smaller ball pushes even short distances to the fallback; results must not change.
    monkeypatch.setattr(surface, "_BALL_OFFSETS", 3)
    d_ref2, d_pred2 = surface_distances(ref, pred, (1.0, 1.0, 0.5))
    np.testing.assert_allclose(np.sort(d_pred2), np.sort(d_pred))


def test_empty_conventions():
    empty = np.zeros((4, 4, 4), bool)
    blob = empty.copy()
    blob[1:3, 1:3, 1:3] = True
    both = surface_metrics(empty, empty, (1, 1, 1))
    assert all(math.isnan(v) for v in both.values())
    for ref, pred in ((empty, blob), (blob, empty)):
        m = surface_metrics(ref, pred, (1, 1, 1))
        assert m == {"NSD": 0.0, "HD95": math.inf, "ASSD": math.inf}


def test_bad_arguments_refused():
    a = np.zeros((3, 3, 3), bool)
    with pytest.raises(ValueError, match="shape"):
        surface_metrics(a, np.zeros((3, 3, 4), bool), (1, 1, 1))
    with pytest.raises(ValueError, match="spacing"):
        surface_metrics(a, a, (1, 1))
    with pytest.raises(ValueError, match="tolerance"):
        surface_metrics(a, a, (1, 1, 1), tolerance_mm=-1)
