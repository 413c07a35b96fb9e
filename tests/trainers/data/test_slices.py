"""2d configurations of 3D data: one slice per sample, the foreground slice when forced."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from mednext_fw.trainers.data.dataset import CaseArrays
from mednext_fw.trainers.data.sampler import PatchLoader
from mednext_fw.trainers.data.slices import pick_slice


def test_forced_sample_takes_a_foreground_slice_and_its_in_plane_locations():
    data = np.arange(2 * 5 * 4 * 4, dtype=np.float32).reshape(2, 5, 4, 4)
    seg = np.zeros((1, 5, 4, 4), np.int16)
    seg[0, 3, 1, 2] = 1
    locs = {"1": [[3, 1, 2]]}
    d, s, l2 = pick_slice(data, seg, locs, np.random.RandomState(0))
    np.testing.assert_array_equal(d, data[:, 3])
    assert s[0, 1, 2] == 1 and l2 == {"1": [[1, 2]]}


def test_unforced_sample_takes_any_slice():
    data = np.zeros((1, 5, 4, 4), np.float32)
    seen = {int(pick_slice(data + np.arange(5)[None, :, None, None], data, None, np.random.RandomState(i))[0][0, 0, 0])
            for i in range(40)}
    assert seen == set(range(5))


class _OneCase:
    """The loader's view of a dataset: one 3D case with its stored foreground locations."""

    def __init__(self, data, seg, locations):
        self.case_ids = ["a"]
        self._case = CaseArrays("a", data, seg, SimpleNamespace(class_locations=locations))

    def __len__(self):
        return 1

    def load(self, case_id):
        return self._case


def test_loader_yields_2d_patches_from_3d_cases():
    rng = np.random.default_rng(0)
    seg = np.zeros((1, 6, 20, 18), np.int16)
    seg[0, 4, 5:9, 5:9] = 1
    locs = {"1": [[4, y, x] for y in range(5, 9) for x in range(5, 9)]}
    dataset = _OneCase(rng.normal(size=(1, 6, 20, 18)).astype(np.float32), seg, locs)
    loader = PatchLoader(dataset, 2, [16, 16], oversample_foreground=0.5, seed=0)
    batch = loader.generate_train_batch()
    assert batch["data"].shape == (2, 1, 16, 16) and batch["seg"].shape == (2, 1, 16, 16)
    assert batch["seg"][1].max() == 1  # the forced sample sits on the foreground slice
