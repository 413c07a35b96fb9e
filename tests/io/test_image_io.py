import numpy as np
import pytest
import SimpleITK as sitk

from mednext_fw.io.image_io import ImageReadError, read_images, read_seg, write_seg


def _img(arr, spacing=(0.8, 0.9, 2.5), origin=(10.0, -5.0, 3.0)):
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, -1))
    return img


@pytest.mark.parametrize("ending", [".nii.gz", ".nrrd", ".mha"])
def test_round_trip_keeps_geometry(tmp_path, ending):
    seg = np.zeros((5, 6, 7), np.uint8)
    seg[1:3, 2:5, 3:6] = 2
    src = tmp_path / f"a{ending}"
    sitk.WriteImage(_img(seg), str(src))
    arr, props = read_seg(src)
    assert arr.shape == (1, 5, 6, 7) and props.spacing == pytest.approx([2.5, 0.9, 0.8])
    write_seg(arr, props, tmp_path / f"b{ending}")
    back = sitk.ReadImage(str(tmp_path / f"b{ending}"))
    assert np.array_equal(sitk.GetArrayFromImage(back), seg)
    assert back.GetSpacing() == pytest.approx((0.8, 0.9, 2.5))
    assert back.GetOrigin() == pytest.approx((10.0, -5.0, 3.0))
    assert back.GetDirection() == pytest.approx((0, 1, 0, 1, 0, 0, 0, 0, -1))


def test_multichannel_and_mismatch(tmp_path):
    a, b = np.ones((4, 5, 6), np.float32), np.zeros((4, 5, 6), np.int16)
    sitk.WriteImage(_img(a), str(tmp_path / "c_0000.nii.gz"))
    sitk.WriteImage(_img(b), str(tmp_path / "c_0001.nii.gz"))
    data, _ = read_images([tmp_path / "c_0000.nii.gz", tmp_path / "c_0001.nii.gz"])
    assert data.shape == (2, 4, 5, 6) and data.dtype == np.float32
    sitk.WriteImage(_img(np.zeros((4, 5, 7), np.int16)), str(tmp_path / "d_0001.nii.gz"))
    with pytest.raises(ImageReadError, match="d_0001.nii.gz: shape"):
        read_images([tmp_path / "c_0000.nii.gz", tmp_path / "d_0001.nii.gz"])


def test_4d_and_png(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 4, 5), np.float32), isVector=False),
                    str(tmp_path / "x.nii.gz"))
    with pytest.raises(ImageReadError, match="4D"):
        read_images([tmp_path / "x.nii.gz"])
    from PIL import Image

    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(tmp_path / "p.png")
    arr, props = read_images([tmp_path / "p.png"])
    assert arr.shape == (1, 1, 3, 4) and props.is_2d and props.spacing[0] == 999
