import numpy as np
import pytest
from PIL import Image

from mednext_fw.demo.overlay import write_overlay


def test_overlay_draws_both_contours(tmp_path):
    image = np.random.default_rng(0).normal(size=(20, 24, 22)).astype(np.float32)
    ref = np.zeros(image.shape, np.uint8)
    ref[5:15, 6:18, 5:17] = 1
    pred = np.roll(ref, 3, axis=2)
    path = tmp_path / "case.png"
    write_overlay(image, ref, pred, path, title="case")
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
    green = (rgb[..., 1] > 200) & (rgb[..., 0] < 80) & (rgb[..., 2] < 80)
    assert red.sum() > 50 and green.sum() > 50
    assert not list(tmp_path.glob(".*"))  # nothing left under a temporary name


def test_overlay_refuses_mismatched_shapes(tmp_path):
    with pytest.raises(ValueError, match="shapes differ"):
        write_overlay(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), np.zeros((4, 4, 5)), tmp_path / "x.png")
