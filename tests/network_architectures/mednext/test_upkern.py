import pytest
import torch
import torch.nn.functional as F

from mednext_fw.network_architectures.mednext import UpKernError, create_mednext, upkern_init

TINY = dict(n_channels=4, block_counts=1, deep_supervision=True)


@pytest.mark.parametrize("dim", [3, 2])
def test_k5_from_k3(dim):
    torch.manual_seed(0)
    k3 = create_mednext("B", 1, 3, kernel_size=3, dim=dim, **TINY)
    k5 = create_mednext("B", 1, 3, kernel_size=5, dim=dim, **TINY)
    report = upkern_init(k5, k3)
    src, dst = k3.state_dict(), k5.state_dict()
    mode = "trilinear" if dim == 3 else "bilinear"
    depthwise = [k for k in dst if k.endswith("dw.weight")]
    # 9 blocks (1 per stage) + 4 down + 4 up depthwise kernels
    assert sorted(report.interpolated) == sorted(depthwise) and len(depthwise) == 17
    for key in depthwise:
        assert dst[key].shape[2:] == (5,) * dim
        expected = F.interpolate(src[key], size=(5,) * dim, mode=mode, align_corners=False)
        torch.testing.assert_close(dst[key], expected, rtol=0, atol=0)
    for key in set(dst) - set(depthwise):
        assert torch.equal(dst[key], src[key]), key
    assert len(report.copied) == len(dst) - len(depthwise) and not report.missing
    with torch.no_grad():  # the resized network runs
        assert k5(torch.randn((1, 1) + (16,) * dim))[0].shape[1] == 3


def test_clear_errors_on_mismatch():
    k3 = create_mednext("S", 1, 3, kernel_size=3, **TINY)
    with pytest.raises(UpKernError, match="number of classes"):
        upkern_init(create_mednext("S", 1, 4, kernel_size=5, **TINY), k3)
    with pytest.raises(UpKernError, match="width"):
        upkern_init(create_mednext("S", 1, 3, kernel_size=5, **dict(TINY, n_channels=8)), k3)
    no_ds = create_mednext("S", 1, 3, kernel_size=3, **dict(TINY, deep_supervision=False))
    with pytest.raises(UpKernError, match="no tensor 'heads.1.proj"):
        upkern_init(create_mednext("S", 1, 3, kernel_size=5, **TINY), no_ds)
    report = upkern_init(create_mednext("S", 1, 3, kernel_size=5, **TINY), no_ds, strict=False)
    assert sorted(report.missing) == [f"heads.{i}.proj.{p}" for i in range(1, 5) for p in ("bias", "weight")]


def test_anisotropic_kernels_grow_only_where_above_one():
    topo = dict(strides=[[1, 2, 2], [2, 2, 2]])
    torch.manual_seed(0)
    k3 = create_mednext("S", 1, 3, kernel_sizes=[[1, 3, 3], [3, 3, 3], [3, 3, 3]], **topo, **TINY)
    k5 = create_mednext("S", 1, 3, kernel_sizes=[[1, 5, 5], [5, 5, 5], [5, 5, 5]], **topo, **TINY)
    report = upkern_init(k5, k3)
    src, dst = k3.state_dict(), k5.state_dict()
    assert tuple(dst["encoder.0.0.dw.weight"].shape[2:]) == (1, 5, 5)
    assert len(report.interpolated) == 5 + 2 + 2  # 5 stages of one block, 2 down and 2 up blocks
    # the 1-sized slice axis is copied; the in-plane 3x3 grows to 5x5 exactly as a 2D UpKern would
    expected = F.interpolate(src["encoder.0.0.dw.weight"][:, :, 0], size=(5, 5), mode="bilinear", align_corners=False)
    torch.testing.assert_close(dst["encoder.0.0.dw.weight"][:, :, 0], expected)
    with torch.no_grad():
        assert k5(torch.randn(1, 1, 4, 16, 8))[0].shape == (1, 3, 4, 16, 8)
