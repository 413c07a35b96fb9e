"""What SimpleITK hides in NIfTI files, read with nibabel instead.

SimpleITK's NIfTI reader turns NaN/Inf voxels into 0 and gives an axis with a zero or non-finite
pixdim a spacing of 1.0 mm (ITK only prints "unexpected scales in sform"), so such a case would be
preprocessed silently and resampled wrongly. These checks read the header (cheap) or the raw voxels
(as costly as a read) the way the file stores them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

NIFTI_ENDINGS = (".nii", ".nii.gz")


def is_nifti(path: str | Path) -> bool:
    return Path(path).name.lower().endswith(NIFTI_ENDINGS)


def _load(path: Path):
    import nibabel as nib

    return nib.load(str(path))


def _raw_header(path: Path):
    """The header as stored: ``nib.load`` would already have "fixed" a zero pixdim to 1."""
    import gzip
    import struct

    import nibabel as nib

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        size = f.read(4)
        f.seek(0)
        n = {struct.unpack("<i", size)[0], struct.unpack(">i", size)[0]} if len(size) == 4 else set()
        cls = nib.Nifti2Header if 540 in n else nib.Nifti1Header
        return cls.from_fileobj(f, check=False)


def pixdim_problem(path: str | Path) -> str | None:
    """A message when a spatial pixdim is zero, negative or not finite, else None (also for non-NIfTI)."""
    path = Path(path)
    if not is_nifti(path):
        return None
    try:
        header = _raw_header(path)
    except Exception:  # unreadable headers are SimpleITK's to report, with its own message
        return None
    ndim = int(header["dim"][0])
    if not 1 <= ndim <= 7:
        return None  # a corrupt header: SimpleITK reports it
    pixdim = [float(v) for v in header["pixdim"][1:1 + min(ndim, 3)]]
    bad = [i for i, v in enumerate(pixdim) if not np.isfinite(v) or v <= 0]
    if bad:
        return (f"{path}: voxel spacing (pixdim) {pixdim} is zero or not finite on axis {bad}; the scanner "
                "geometry is broken, fix the header (e.g. nibabel's header.set_zooms)")
    return None


def nonfinite_count(path: str | Path) -> int:
    """How many voxels the file stores as NaN or Inf (0 for integer data and non-NIfTI files)."""
    path = Path(path)
    if not is_nifti(path):
        return 0
    img = _load(path)
    if not np.issubdtype(img.get_data_dtype(), np.floating) and not _scaling_can_be_nonfinite(img):
        return 0
    data = np.asanyarray(img.dataobj)
    return int(data.size - np.count_nonzero(np.isfinite(data)))


def _scaling_can_be_nonfinite(img) -> bool:
    slope, inter = img.dataobj.slope, img.dataobj.inter
    return not (np.isfinite(slope) and np.isfinite(inter))
