"""Image and segmentation reading/writing.

Contract (the same as nnU-Net's, so plans and preprocessed data are interchangeable in spirit):
arrays come out as ``(C, Z, Y, X)`` float32 for images and ``(1, Z, Y, X)`` for segmentations,
with ``ImageProperties.spacing`` following the array axes. 2D images are ``(C, 1, H, W)`` with a
dummy first spacing of 999, so 2D and 3D data share one code path. Everything needed to write a
result back onto the input's grid (spacing, origin, direction, file ending) travels in the
properties.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import SimpleITK as sitk

from mednext_fw.errors import UserError
from mednext_fw.io.atomic import atomic_path
from mednext_fw.io.nifti import pixdim_problem

SITK_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".gipl", ".gipl.gz")
NATURAL_2D_ENDINGS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
DUMMY_2D_SPACING = 999.0


class ImageReadError(UserError, ValueError):
    """An input file is unreadable, has the wrong dimensionality or disagrees with its siblings."""


@dataclass
class ImageProperties:
    spacing: list[float]  # follows the array's spatial axes (Z, Y, X)
    is_2d: bool = False
    # Native geometry in SimpleITK's (x, y, z) convention; empty for natural 2D images.
    sitk_spacing: list[float] = field(default_factory=list)
    sitk_origin: list[float] = field(default_factory=list)
    sitk_direction: list[float] = field(default_factory=list)
    num_rgb_channels: int = 0  # >0 when a natural image contributed colour channels

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ImageProperties":
        return cls(**d)


def file_ending_of(path: str | Path) -> str:
    name = Path(path).name.lower()
    for ending in SITK_ENDINGS + NATURAL_2D_ENDINGS:
        if name.endswith(ending):
            return ending
    return Path(path).suffix.lower()


def _read_sitk(path: Path) -> tuple[np.ndarray, ImageProperties]:
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ImageReadError(f"{path}: cannot be read ({str(exc).strip().splitlines()[-1]})") from exc
    dim = img.GetDimension()
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ImageReadError(f"{path}: has {img.GetNumberOfComponentsPerPixel()} components per voxel; "
                             "store each channel as its own _000X file")
    problem = pixdim_problem(path)  # ITK would silently read a zero pixdim as 1.0 mm
    if problem is None and not all(np.isfinite(s) and s > 0 for s in img.GetSpacing()):
        problem = f"{path}: voxel spacing {list(img.GetSpacing())} is zero or not finite"
    if problem:
        raise ImageReadError(problem)
    arr = sitk.GetArrayFromImage(img)
    spacing = list(img.GetSpacing())[::-1]
    if dim == 2:
        arr = arr[None]
        spacing = [DUMMY_2D_SPACING * max(spacing)] + spacing
    elif dim == 4:
        raise ImageReadError(f"{path}: is a 4D image {tuple(arr.shape)}; split it into one 3D file per channel "
                             "(CASE_0000, CASE_0001, ...) or use `mednext_convert msd`")
    elif dim != 3:
        raise ImageReadError(f"{path}: {dim}D images are not supported")
    props = ImageProperties(
        spacing=[float(s) for s in spacing],
        is_2d=dim == 2,
        sitk_spacing=list(img.GetSpacing()),
        sitk_origin=list(img.GetOrigin()),
        sitk_direction=list(img.GetDirection()),
    )
    return arr, props


def _read_natural(path: Path) -> tuple[np.ndarray, ImageProperties]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot be read as an image ({exc})") from exc
    if arr.ndim == 2:
        arr = arr[None]
        rgb = 0
    elif arr.ndim == 3:  # H, W, C -> C, H, W ; alpha dropped
        arr = np.moveaxis(arr[..., :3], -1, 0)
        rgb = arr.shape[0]
    else:
        raise ImageReadError(f"{path}: unexpected image shape {arr.shape}")
    props = ImageProperties(spacing=[DUMMY_2D_SPACING, 1.0, 1.0], is_2d=True, num_rgb_channels=rgb)
    return arr[:, None], props  # (C, 1, H, W)


@dataclass(frozen=True)
class ImageHeader:
    dimension: int
    size: tuple[int, ...]  # SimpleITK order (x, y, z); (width, height) for natural images
    spacing: tuple[float, ...] | None  # None for natural 2D images (no geometry)


def read_header(path: str | Path) -> ImageHeader:
    """Dimension, size and spacing from the header alone (cheap checks before reading voxels)."""
    path = Path(path)
    if file_ending_of(path) in NATURAL_2D_ENDINGS:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                return ImageHeader(2, tuple(im.size), None)
        except (UnidentifiedImageError, OSError) as exc:
            raise ImageReadError(f"{path}: cannot be read as an image ({exc})") from exc
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ImageReadError(f"{path}: cannot be read ({str(exc).strip().splitlines()[-1]})") from exc
    if reader.GetNumberOfComponents() != 1:
        raise ImageReadError(f"{path}: has {reader.GetNumberOfComponents()} components per voxel; "
                             "store each channel as its own _000X file")
    return ImageHeader(reader.GetDimension(), tuple(reader.GetSize()), tuple(reader.GetSpacing()))


def truncated_gzip_problem(path: str | Path) -> str | None:
    """A message when a ``.gz`` file's stream ends early, else None.

    SimpleITK fills a truncated ``.nii.gz`` with zeros instead of failing, so a cut-off download
    would silently train on half a volume; the integrity check decompresses to the end to catch it.
    """
    import gzip
    import zlib

    path = Path(path)
    if not path.name.lower().endswith(".gz"):
        return None
    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    except (EOFError, OSError, zlib.error) as exc:
        return f"{path}: the compressed file is truncated or corrupt ({exc})"
    return None


def read_image(path: str | Path) -> tuple[np.ndarray, ImageProperties]:
    """One file -> ``(C, Z, Y, X)`` array (C = 1 except for RGB natural images) and its properties."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: file not found")
    if file_ending_of(path) in NATURAL_2D_ENDINGS:
        return _read_natural(path)
    arr, props = _read_sitk(path)
    return arr[None], props


def read_images(paths: Sequence[str | Path]) -> tuple[np.ndarray, ImageProperties]:
    """The channel files of one case -> ``(C, Z, Y, X)`` float32; shapes and spacings must agree."""
    if not paths:
        raise ImageReadError("no image files given")
    arrays, first = [], None
    for p in paths:
        arr, props = read_image(p)
        if first is None:
            first = props
        else:
            if arr.shape[1:] != arrays[0].shape[1:]:
                raise ImageReadError(f"{p}: shape {arr.shape[1:]} differs from {paths[0]} {arrays[0].shape[1:]}")
            if not np.allclose(props.spacing, first.spacing, rtol=1e-3):
                raise ImageReadError(f"{p}: spacing {props.spacing} differs from {paths[0]} {first.spacing}")
        arrays.append(arr)
    data = np.concatenate(arrays, 0).astype(np.float32, copy=False)
    return data, first


def read_seg(path: str | Path) -> tuple[np.ndarray, ImageProperties]:
    arr, props = read_image(path)
    if arr.shape[0] != 1:
        raise ImageReadError(f"{path}: a segmentation must have one channel, found {arr.shape[0]}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ImageReadError(f"{path}: segmentation contains NaN/Inf")
        if not np.all(arr == np.round(arr)):
            raise ImageReadError(f"{path}: segmentation has non-integer values")
    return arr, props


def write_seg(seg: np.ndarray, props: ImageProperties, path: str | Path) -> None:
    """Write a ``(Z, Y, X)`` (or ``(1, Z, Y, X)``) label map on the geometry in ``props`` atomically."""
    path = Path(path)
    seg = np.asarray(seg)
    if seg.ndim == 4:
        seg = seg[0]
    dtype = np.uint8 if seg.max(initial=0) < 255 else np.uint16
    seg = seg.astype(dtype, copy=False)
    with atomic_path(path) as tmp:
        if file_ending_of(path) in NATURAL_2D_ENDINGS:
            from PIL import Image

            Image.fromarray(seg[0]).save(tmp)
            return
        img = sitk.GetImageFromArray(seg[0] if props.is_2d else seg)
        if props.sitk_spacing:
            img.SetSpacing(props.sitk_spacing)
            img.SetOrigin(props.sitk_origin)
            img.SetDirection(props.sitk_direction)
        sitk.WriteImage(img, str(tmp), useCompression=True)
