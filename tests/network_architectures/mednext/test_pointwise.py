import pytest
import torch
import torch.nn.functional as F

from mednext_fw.network_architectures.mednext import pointwise
from mednext_fw.network_architectures.mednext.fast import to_channels_first_view, to_channels_last_view

CONV = {2: F.conv2d, 3: F.conv3d}


@pytest.mark.parametrize("dim,stride", [(3, None), (3, (2, 2, 2)), (3, (1, 2, 2)), (2, None), (2, (2, 2))])
@pytest.mark.parametrize("onednn", [True, False])
def test_pointwise_matches_autograd_of_a_1x1_conv(dim, stride, onednn, monkeypatch):
    """Both routes (oneDNN 1x1 conv with its own backward; the GEMM small tensors take): values and all
    three gradients as autograd's conv."""
    monkeypatch.setattr(pointwise, "_ONEDNN_MIN_VOXELS", 0 if onednn else 10**9)
    torch.manual_seed(0)
    x = torch.randn((2,) + (6,) * dim + (5,), dtype=torch.double, requires_grad=True)  # channels-last
    w = torch.randn((3, 5) + (1,) * dim, dtype=torch.double, requires_grad=True)
    b = torch.randn(3, dtype=torch.double, requires_grad=True)
    ours = pointwise.pointwise(x, w, b, stride)
    ref = to_channels_last_view(CONV[dim](to_channels_first_view(x), w, b, stride=stride or 1))
    torch.testing.assert_close(ours, ref)
    gy = torch.randn_like(ref)
    for g_ours, g_ref in zip(torch.autograd.grad(ours, (x, w, b), gy), torch.autograd.grad(ref, (x, w, b), gy)):
        torch.testing.assert_close(g_ours, g_ref)


def test_pointwise_under_cpu_autocast_gives_gradients_in_the_parameters_dtype(monkeypatch):
    monkeypatch.setattr(pointwise, "_ONEDNN_MIN_VOXELS", 0)
    x = torch.randn(1, 4, 4, 4, 8, requires_grad=True)
    w = torch.randn(16, 8, 1, 1, 1, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = pointwise.pointwise(x, w, None)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16 and x.grad.dtype == w.grad.dtype == torch.float32
    torch.testing.assert_close(w.grad, (x.detach().reshape(-1, 8).sum(0)).expand(16, 8).reshape(w.shape),
                               atol=0.5, rtol=0.05)


@pytest.mark.parametrize("m,k,narrow_first", [(4, 32, True), (16, 8, True), (8, 32, True), (64, 32, False),
                                              (32, 64, False), (16, 16, False)])
def test_weight_product_orders_operands_by_width(m, k, narrow_first, monkeypatch):
    """gy^T x in the order MKL runs fastest; the value never depends on the order."""
    gy, x = torch.randn(50, m, dtype=torch.double), torch.randn(50, k, dtype=torch.double)
    calls = []
    real_mm = torch.mm
    monkeypatch.setattr(torch, "mm", lambda a, b: calls.append(a.shape[0]) or real_mm(a, b))
    torch.testing.assert_close(pointwise._weight_product(gy, x), gy.t() @ x)
    first = calls[0]
    assert first == (min(m, k) if narrow_first else max(m, k))
