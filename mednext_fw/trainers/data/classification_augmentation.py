"""2D augmentation for the classification trainers: named presets plus overrides, set in plans.

``plans.json -> configurations.2d_cls.extra.augmentation`` holds ``{"preset": NAME, ...overrides}``;
:func:`resolve_augmentation` turns it into an :class:`Augmentation2D`. Presets:

- ``none``: the HoViT and X-ray recipes' own setting (no augmentation), kept for reproduction.
- ``light``: small geometric and intensity jitter, for tasks where appearance must not move much.
- ``default`` (planned): random resized crop (scale + aspect + shift), rotation, brightness,
  contrast, gamma, blur, noise and low-resolution simulation with nnU-Net-like probabilities.
- ``strong``: wider ranges plus a RandAugment-style policy (``randaugment_n`` extra operations per
  image at magnitude ``randaugment_m`` of 10).

Flips are not part of a preset: they follow the configuration's ``mirror_axes``, which the planner
takes from the dataset (a plane or laterality classifier must not flip an image into another class's
look). Everything runs on numpy/scipy in the loader's worker processes (no torch there: forked
workers and torch's thread pools do not mix). Each function takes an explicit ``Generator``, so a
seed reproduces a batch exactly. Spatial operations, blur, low resolution and gamma keep every
image inside its own value range; brightness, contrast and noise move it by the bounded amounts set.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from mednext_fw.errors import UserError


class AugmentationError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class Augmentation2D:
    p_spatial: float = 0.0  # probability of one affine (scale, aspect, shift, rotation) per image
    scale: tuple[float, float] = (1.0, 1.0)  # zoom factor (>1 magnifies: the random resized crop)
    aspect: tuple[float, float] = (1.0, 1.0)  # anisotropic stretch, log-uniform
    translate: float = 0.0  # shift as a fraction of the side
    rotation_deg: float = 0.0  # +- degrees
    p_flip: float = 0.5  # per axis in ``mirror_axes``
    p_brightness: float = 0.0
    brightness: tuple[float, float] = (1.0, 1.0)  # multiplicative
    p_contrast: float = 0.0
    contrast: tuple[float, float] = (1.0, 1.0)  # around the mean, clipped to the image's range
    p_gamma: float = 0.0
    gamma: tuple[float, float] = (1.0, 1.0)  # on the image rescaled to [0, 1]
    p_blur: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 1.0)  # pixels
    p_noise: float = 0.0
    noise_std: tuple[float, float] = (0.0, 0.1)  # times the image's standard deviation
    p_low_res: float = 0.0
    low_res: tuple[float, float] = (0.5, 1.0)  # downsampling factor, then back up
    randaugment_n: int = 0
    randaugment_m: float = 9.0  # 0-10

    @property
    def enabled(self) -> bool:
        return self.randaugment_n > 0 or any(getattr(self, f.name) > 0 for f in fields(self)
                                             if f.name.startswith("p_") and f.name != "p_flip")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


PRESETS: dict[str, Augmentation2D] = {
    "none": Augmentation2D(p_flip=0.0),
    "light": Augmentation2D(p_spatial=0.5, scale=(0.9, 1.1), aspect=(0.95, 1.05), translate=0.05, rotation_deg=10,
                            p_brightness=0.15, brightness=(0.9, 1.1), p_contrast=0.15, contrast=(0.9, 1.1),
                            p_gamma=0.15, gamma=(0.85, 1.2)),
    "default": Augmentation2D(p_spatial=0.8, scale=(0.8, 1.25), aspect=(0.85, 1.15), translate=0.1,
                              rotation_deg=15, p_brightness=0.3, brightness=(0.75, 1.25), p_contrast=0.3,
                              contrast=(0.7, 1.3), p_gamma=0.3, gamma=(0.7, 1.5), p_blur=0.2,
                              blur_sigma=(0.5, 1.0), p_noise=0.15, noise_std=(0.0, 0.1), p_low_res=0.25,
                              low_res=(0.5, 1.0)),
}
PRESETS["strong"] = replace(PRESETS["default"], p_spatial=1.0, scale=(0.7, 1.4), aspect=(0.75, 1.33),
                            translate=0.15, rotation_deg=25, brightness=(0.65, 1.35), contrast=(0.6, 1.5),
                            gamma=(0.6, 1.7), p_blur=0.3, blur_sigma=(0.5, 1.5), p_low_res=0.35,
                            low_res=(0.35, 1.0), randaugment_n=2, randaugment_m=9)
DEFAULT_PRESET = "default"


def resolve_augmentation(spec: dict[str, Any] | None, where: str = "plans.json") -> Augmentation2D:
    """``{"preset": NAME, key: value...}`` -> the preset with the keys overridden; ``None`` -> default."""
    spec = dict(spec or {})
    name = spec.pop("preset", DEFAULT_PRESET)
    if name not in PRESETS:
        raise AugmentationError(f"{where}: augmentation preset '{name}' is unknown (choose {', '.join(PRESETS)})")
    known = {f.name: f for f in fields(Augmentation2D)}
    bad = sorted(set(spec) - set(known))
    if bad:
        raise AugmentationError(f"{where}: unknown augmentation setting(s) {bad} (known: {sorted(known)})")
    base = PRESETS[name]
    values = {}
    for key, value in spec.items():
        current = getattr(base, key)
        if isinstance(current, tuple):
            if not (isinstance(value, (list, tuple)) and len(value) == 2 and value[0] <= value[1]):
                raise AugmentationError(f"{where}: augmentation '{key}' must be [low, high], got {value!r}")
            value = (float(value[0]), float(value[1]))
        elif key.startswith("p_") and not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise AugmentationError(f"{where}: augmentation '{key}' is a probability in [0, 1], got {value!r}")
        values[key] = value
    return replace(base, **values)


# ------------------------------------------------------------------ single operations on (C, H, W)
def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1])) if bounds[1] > bounds[0] else float(bounds[0])


def affine(img: np.ndarray, rng: np.random.Generator, aug: Augmentation2D, mirror_axes: Sequence[int] = (),
           strength: float = 1.0) -> np.ndarray:
    """Zoom, stretch, shift, rotate (about the centre) and flip in one linear resampling.

    Outside the source the image's own minimum is filled in (its background after normalisation).
    """
    c, h, w = img.shape
    zoom = _uniform(rng, [1 + (b - 1) * strength for b in aug.scale])
    log_a = [math.log(a) * strength for a in aug.aspect]
    stretch = math.exp(_uniform(rng, log_a))
    angle = math.radians(_uniform(rng, (-aug.rotation_deg * strength, aug.rotation_deg * strength)))
    flips = [ax for ax in mirror_axes if rng.random() < aug.p_flip]
    shift = np.array([_uniform(rng, (-aug.translate, aug.translate)) * strength * s for s in (h, w)])
    # Output -> input map: inverse zoom/stretch, inverse rotation, flips as sign changes.
    scale = np.diag([1 / (zoom * stretch), stretch / zoom])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    flip = np.diag([-1.0 if ax in flips else 1.0 for ax in (0, 1)])
    matrix = rot @ scale @ flip
    centre = (np.array([h, w]) - 1) / 2
    offset = centre - matrix @ centre - shift
    out = np.empty_like(img)
    for ch in range(c):
        lo = float(img[ch].min())
        out[ch] = ndimage.affine_transform(img[ch], matrix, offset, order=1, mode="constant", cval=lo)
    return out


def brightness(img: np.ndarray, rng: np.random.Generator, bounds: Sequence[float]) -> np.ndarray:
    return img * _uniform(rng, bounds)


def contrast(img: np.ndarray, rng: np.random.Generator, bounds: Sequence[float]) -> np.ndarray:
    factor = _uniform(rng, bounds)
    lo = img.min(axis=(1, 2), keepdims=True)
    hi = img.max(axis=(1, 2), keepdims=True)
    mean = img.mean(axis=(1, 2), keepdims=True)
    return np.clip((img - mean) * factor + mean, lo, hi)


def gamma(img: np.ndarray, rng: np.random.Generator, bounds: Sequence[float]) -> np.ndarray:
    g = _uniform(rng, bounds)
    lo = img.min(axis=(1, 2), keepdims=True)
    span = np.maximum(img.max(axis=(1, 2), keepdims=True) - lo, 1e-8)
    return np.power((img - lo) / span, g) * span + lo


def blur(img: np.ndarray, rng: np.random.Generator, bounds: Sequence[float]) -> np.ndarray:
    sigma = _uniform(rng, bounds)
    return np.stack([ndimage.gaussian_filter(ch, sigma, mode="nearest") for ch in img])


def noise(img: np.ndarray, rng: np.random.Generator, bounds: Sequence[float]) -> np.ndarray:
    std = _uniform(rng, bounds) * float(img.std())
    return img + rng.normal(0.0, std, img.shape).astype(img.dtype) if std > 0 else img


def low_resolution(img: np.ndarray, rng: np.random.Generator, bounds: Sequence[float]) -> np.ndarray:
    """Down by a random factor (nearest), back up (linear): the look of a coarser acquisition."""
    factor = _uniform(rng, bounds)
    _, h, w = img.shape
    small = [max(1, int(round(h * factor))), max(1, int(round(w * factor)))]
    out = np.empty_like(img)
    for ch in range(img.shape[0]):
        down = ndimage.zoom(img[ch], (small[0] / h, small[1] / w), order=0, mode="nearest", grid_mode=True)
        out[ch] = ndimage.zoom(down, (h / down.shape[0], w / down.shape[1]), order=1, mode="nearest",
                               grid_mode=True)[:h, :w]
    return out


_INTENSITY = (("p_low_res", "low_res", low_resolution), ("p_blur", "blur_sigma", blur),
              ("p_noise", "noise_std", noise), ("p_brightness", "brightness", brightness),
              ("p_contrast", "contrast", contrast), ("p_gamma", "gamma", gamma))


def _randaugment(img: np.ndarray, rng: np.random.Generator, aug: Augmentation2D,
                 mirror_axes: Sequence[int]) -> np.ndarray:
    """``randaugment_n`` operations drawn uniformly (spatial included), each at magnitude m/10 of its range."""
    strength = min(max(aug.randaugment_m, 0.0), 10.0) / 10
    ops = ["spatial", *[name for _, name, _ in _INTENSITY]]
    for op in rng.choice(ops, size=aug.randaugment_n, replace=True):
        if op == "spatial":
            img = affine(img, rng, aug, (), strength)
            continue
        fn = next(f for _, name, f in _INTENSITY if name == op)
        lo, hi = getattr(aug, op)
        if op in ("brightness", "contrast", "gamma"):  # ranges around 1: shrink towards identity
            bounds = (1 + (lo - 1) * strength, 1 + (hi - 1) * strength)
        else:
            bounds = (lo, lo + (hi - lo) * strength)
        img = fn(img, rng, bounds)
    return img


def augment_image(img: np.ndarray, rng: np.random.Generator, aug: Augmentation2D,
                  mirror_axes: Sequence[int] = ()) -> np.ndarray:
    """One ``(C, H, W)`` float image -> an augmented copy of the same shape and dtype."""
    out = np.array(img, dtype=np.float32, copy=True)
    spatial = rng.random() < aug.p_spatial
    if spatial or (mirror_axes and aug.p_flip > 0):
        # Flips ride on the affine; without a spatial draw the affine is a pure flip (or identity).
        geometric = aug if spatial else replace(aug, scale=(1, 1), aspect=(1, 1), translate=0.0, rotation_deg=0.0)
        out = affine(out, rng, geometric, mirror_axes)
    for p_name, range_name, fn in _INTENSITY:
        if rng.random() < getattr(aug, p_name):
            out = fn(out, rng, getattr(aug, range_name))
    if aug.randaugment_n > 0:
        out = _randaugment(out, rng, aug, mirror_axes)
    return out.astype(np.float32, copy=False)


def augment_batch(data: np.ndarray, rng: np.random.Generator, aug: Augmentation2D,
                  mirror_axes: Sequence[int] = ()) -> np.ndarray:
    """``(B, C, H, W)`` -> augmented ``(B, C, H, W)``; every image draws its own parameters."""
    if not aug.enabled and not (mirror_axes and aug.p_flip > 0):
        return data
    return np.stack([augment_image(x, rng, aug, mirror_axes) for x in data])
