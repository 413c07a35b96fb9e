import numpy as np

from mednext_fw.trainers.data.sampler import (choose_bbox, crop_and_pad, enlarged_patch_size, force_foreground)


def test_oversampling_is_deterministic_one_third():
    assert [force_foreground(j, 2, 1 / 3) for j in range(2)] == [False, True]
    assert sum(force_foreground(j, 6, 1 / 3) for j in range(6)) == 2


def test_enlarged_patch_covers_rotation_and_scaling():
    assert enlarged_patch_size([32, 32, 32], 0.0) == [38, 38, 38]  # 32 / 0.85
    big = enlarged_patch_size([32, 32, 32], np.radians(30))
    assert all(b >= 32 * 1.36 / 0.85 - 1 for b in big)
    assert enlarged_patch_size([64, 64], np.pi)[0] >= 75


def test_foreground_bbox_contains_the_location():
    rng = np.random.RandomState(0)
    for _ in range(20):
        loc = [int(v) for v in rng.randint(0, 40, 3)]
        bbox = choose_bbox([40, 40, 40], [16, 16, 16], rng, {"1": [loc]})
        assert all(a <= l < b for (a, b), l in zip(bbox, loc))


def test_ignore_key_is_never_the_centre():
    rng = np.random.RandomState(0)
    for _ in range(10):
        bbox = choose_bbox([50, 50, 50], [8, 8, 8], rng, {"1": [[5, 5, 5]], "2": [[40, 40, 40]]}, ignore_keys=("2",))
        assert bbox[0][0] <= 5 < bbox[0][1]


def test_small_image_is_padded():
    arr = np.ones((1, 4, 10, 10), np.float32)
    rng = np.random.RandomState(0)
    bbox = choose_bbox(arr.shape[1:], [8, 8, 8], rng)
    out = crop_and_pad(arr, bbox, -1)
    assert out.shape == (1, 8, 8, 8)
    assert (out == -1).sum() == 8 * 8 * 8 - 4 * 8 * 8  # only the depth is padded


def test_enlarged_patch_still_moves_on_small_images():
    """Enlarged box larger than the image: the final patch must not be pinned to the centre."""
    from mednext_fw.trainers.data.sampler import PatchLoader

    class _Case:
        def __init__(self):
            self.data = np.arange(1, 40 * 40 * 40 + 1, dtype=np.float32).reshape(1, 40, 40, 40)
            self.seg = np.zeros((1, 40, 40, 40), np.int16)
            self.class_locations = {}

    class _DS:
        case_ids = ["a"]

        def __len__(self):
            return 1

        def load(self, _):
            return _Case()

    loader = PatchLoader(_DS(), 1, [70, 70, 70], 0.0, seed=0, final_patch_size=[16, 16, 16])
    centres = set()
    for _ in range(10):
        data = next(loader)["data"][0, 0]
        assert data.shape == (70, 70, 70)
        centre = data[27:43, 27:43, 27:43]  # what the spatial transform's centre crop keeps
        assert (centre > 0).all()  # the final patch lies inside the image (padding is 0)
        centres.add(float(centre[8, 8, 8]))
    assert len(centres) > 5
