"""Each 2D classification augmentation: shape, value range, determinism with a seed; presets; flips."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mednext_fw.trainers.data import classification_augmentation as ca
from mednext_fw.trainers.data.classification_augmentation import (PRESETS, Augmentation2D, AugmentationError,
                                                                  augment_batch, augment_image, resolve_augmentation)


def _image(c=2, h=24, w=32) -> np.ndarray:
    rng = np.random.default_rng(7)
    img = np.zeros((c, h, w), np.float32)
    img[:, 6:18, 8:24] = rng.normal(2.0, 0.5, (c, 12, 16))  # a bright object on a dark background
    return img


FULL = replace(PRESETS["default"], rotation_deg=30)
# op -> (call, keeps the image inside its own range)
OPS = {
    "affine": (lambda x, r: ca.affine(x, r, FULL), True),
    "brightness": (lambda x, r: ca.brightness(x, r, (0.75, 1.25)), False),
    "contrast": (lambda x, r: ca.contrast(x, r, (0.5, 1.5)), True),
    "gamma": (lambda x, r: ca.gamma(x, r, (0.7, 1.5)), True),
    "blur": (lambda x, r: ca.blur(x, r, (0.5, 1.5)), True),
    "noise": (lambda x, r: ca.noise(x, r, (0.05, 0.1)), False),
    "low_res": (lambda x, r: ca.low_resolution(x, r, (0.3, 0.6)), True),
    "randaugment": (lambda x, r: augment_image(x, r, replace(PRESETS["none"], randaugment_n=3, randaugment_m=10)),
                    False),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_op_shape_range_and_seed(name):
    fn, in_range = OPS[name]
    img = _image()
    out = fn(img.copy(), np.random.default_rng(3))
    assert out.shape == img.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert not np.array_equal(out, img)  # it did something
    if in_range:
        lo, hi = img.min(axis=(1, 2)), img.max(axis=(1, 2))
        assert (out.min(axis=(1, 2)) >= lo - 1e-5).all() and (out.max(axis=(1, 2)) <= hi + 1e-5).all()
    np.testing.assert_array_equal(out, fn(img.copy(), np.random.default_rng(3)))  # same seed, same image
    assert not np.array_equal(out, fn(img.copy(), np.random.default_rng(4)))


def test_bounded_intensity_ops():
    img = _image()
    for seed in range(20):
        rng = np.random.default_rng(seed)
        ratio = ca.brightness(img, rng, (0.75, 1.25)).max() / img.max()
        assert 0.75 - 1e-6 <= ratio <= 1.25 + 1e-6
        noisy = ca.noise(img, np.random.default_rng(seed), (0.0, 0.1))
        assert (noisy - img).std() <= 0.1 * img.std() * 1.2


def test_affine_zoom_magnifies_and_fills_background():
    img = _image(c=1)
    grow = replace(PRESETS["none"], scale=(1.5, 1.5))
    out = ca.affine(img, np.random.default_rng(0), grow)
    assert (out > 0.5).sum() > 1.8 * (img > 0.5).sum()  # 1.5^2 = 2.25x the area
    shrink = ca.affine(img, np.random.default_rng(0), replace(grow, scale=(0.5, 0.5)))
    assert (shrink[:, :3] == img.min()).all()  # the border is the image's own background


def test_flips_only_on_declared_axes():
    img = _image(c=1)
    flip = replace(PRESETS["none"], p_flip=1.0)
    lr = augment_image(img, np.random.default_rng(0), flip, mirror_axes=[1])
    np.testing.assert_allclose(lr, img[:, :, ::-1], atol=1e-6)
    np.testing.assert_array_equal(augment_image(img, np.random.default_rng(0), flip, mirror_axes=[]), img)
    np.testing.assert_array_equal(augment_batch(img[None], np.random.default_rng(0), PRESETS["none"], [1]), img[None])


def test_batch_draws_per_image_and_is_reproducible():
    batch = np.stack([_image()] * 4)
    a = augment_batch(batch, np.random.default_rng(11), PRESETS["strong"], [1])
    b = augment_batch(batch, np.random.default_rng(11), PRESETS["strong"], [1])
    np.testing.assert_array_equal(a, b)
    assert a.shape == batch.shape and len({x.tobytes() for x in a}) == 4  # each image its own draw


def test_presets_and_overrides():
    assert resolve_augmentation(None) == PRESETS["default"] and PRESETS["default"].enabled
    assert not resolve_augmentation({"preset": "none"}).enabled  # the recipes' setting
    custom = resolve_augmentation({"preset": "light", "rotation_deg": 5, "gamma": [0.9, 1.1], "p_noise": 0.5})
    assert (custom.rotation_deg, custom.gamma, custom.p_noise) == (5, (0.9, 1.1), 0.5)
    assert custom.scale == PRESETS["light"].scale
    for bad, match in (({"preset": "wild"}, "preset 'wild'"), ({"rotate": 3}, "rotate"),
                       ({"gamma": [1.5, 0.7]}, "gamma"), ({"p_blur": 2}, "p_blur")):
        with pytest.raises(AugmentationError, match=match):
            resolve_augmentation(bad, "x/plans.json")
    assert Augmentation2D().to_dict()["scale"] == [1.0, 1.0]
