"""Overlay PNGs: an image slice with the reference and predicted label contours.

One figure per case with the three orthogonal slices through the reference's centre of mass, so a
reader sees at a glance where prediction and reference disagree.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

from mednext_fw.io.atomic import atomic_path  # noqa: E402


def _centre(mask: np.ndarray) -> tuple[int, ...]:
    idx = np.argwhere(mask)
    if idx.size == 0:
        return tuple(s // 2 for s in mask.shape)
    return tuple(int(round(c)) for c in idx.mean(0))


def write_overlay(image: np.ndarray, reference: np.ndarray, prediction: np.ndarray, path: str | Path,
                  title: str = "", spacing: tuple[float, ...] = (1.0, 1.0, 1.0)) -> None:
    """``image``, ``reference`` and ``prediction`` are ``(Z, Y, X)`` arrays of one case."""
    if image.shape != reference.shape or image.shape != prediction.shape:
        raise ValueError(f"overlay {path}: shapes differ: image {image.shape}, reference {reference.shape}, "
                         f"prediction {prediction.shape}")
    centre = _centre(reference > 0)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for axis, ax in enumerate(axes):
        sl = [slice(None)] * 3
        sl[axis] = centre[axis]
        img2d, ref2d, pred2d = (np.asarray(a[tuple(sl)], dtype=np.float32) for a in (image, reference, prediction))
        others = [s for i, s in enumerate(spacing) if i != axis]
        aspect = others[0] / others[1]  # keep anatomy proportions on anisotropic grids
        ax.imshow(img2d, cmap="gray", origin="lower", aspect=aspect)
        for arr, colour in ((ref2d, "lime"), (pred2d, "red")):
            if arr.max() > 0:
                ax.contour(arr > 0, levels=[0.5], colors=colour, linewidths=1.0, origin="lower")
        ax.set_title(f"axis {axis} slice {centre[axis]}")
        ax.axis("off")
    fig.suptitle(f"{title}  (green: reference, red: prediction)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
