import pytest
import torch
import torch.nn.functional as F

from mednext_fw.network_architectures.mednext.norms import GRN, ChannelNorm


def _reference(x_cf, kind, norm_w, norm_b, weight, bias, eps=1e-5):
    """The reference's math on a channels-first tensor: GroupNorm(C groups) or LayerNorm over C, then a 1x1 conv."""
    c = x_cf.shape[1]
    if kind == "group":
        y = F.group_norm(x_cf, c, norm_w, norm_b, eps)
    else:
        u = x_cf.mean(1, keepdim=True)
        s = (x_cf - u).pow(2).mean(1, keepdim=True)
        shape = (1, c) + (1,) * (x_cf.dim() - 2)
        y = (x_cf - u) / torch.sqrt(s + eps) * norm_w.view(shape) + norm_b.view(shape)
    return torch.einsum("nc...,oc->no...", y, weight) + bias.view((1, -1) + (1,) * (x_cf.dim() - 2))


@pytest.mark.parametrize("kind", ["group", "layer"])
@pytest.mark.parametrize("dim", [2, 3])
def test_norm_then_linear_matches_reference_values_and_grads(kind, dim):
    torch.manual_seed(0)
    norm = ChannelNorm(5, kind).double()
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    weight = torch.randn(7, 5, dtype=torch.double, requires_grad=True)
    bias = torch.randn(7, dtype=torch.double, requires_grad=True)
    x = (torch.randn((2,) + (6,) * dim + (5,), dtype=torch.double) * 3 + 2).requires_grad_()
    ours = norm.norm_then_linear(x, weight, bias)
    ref = _reference(x.movedim(-1, 1), kind, norm.weight, norm.bias, weight, bias).movedim(1, -1)
    torch.testing.assert_close(ours, ref)
    gy = torch.randn_like(ref)
    inputs = (x, norm.weight, norm.bias, weight, bias)
    for a, b in zip(torch.autograd.grad(ours, inputs, gy), torch.autograd.grad(ref, inputs, gy)):
        torch.testing.assert_close(a, b)


def test_group_norm_under_bf16_autocast_stays_close():
    torch.manual_seed(0)
    norm = ChannelNorm(8)
    weight, bias = torch.randn(16, 8) * 0.3, torch.randn(16)
    x = torch.randn(1, 8, 8, 8, 8)
    exact = norm.norm_then_linear(x, weight, bias)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = norm.norm_then_linear(x, weight, bias)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), exact, atol=0.05, rtol=0.02)


@pytest.mark.parametrize("dim", [2, 3])
def test_grn_matches_formula(dim):
    torch.manual_seed(0)
    grn = GRN(6, dim)
    with torch.no_grad():
        grn.gamma.normal_()
        grn.beta.normal_()
    x_cf = torch.randn((2, 6) + (4,) * dim)
    spatial = tuple(range(2, 2 + dim))
    gx = torch.sqrt((x_cf**2).sum(spatial, keepdim=True))
    nx = gx / (gx.mean(dim=1, keepdim=True) + 1e-6)
    expected = grn.gamma * (x_cf * nx) + grn.beta + x_cf
    torch.testing.assert_close(grn(x_cf.movedim(1, -1)).movedim(-1, 1), expected)
