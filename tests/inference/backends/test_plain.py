"""The plain channels-first MedNeXt computes the fast forward's math exactly (shared parameters)."""
import pytest
import torch

from mednext_fw.inference.backends.plain import PlainMedNeXt, exportable
from mednext_fw.network_architectures.registry import build_network


def _randomised(seed: int, **kwargs):
    torch.manual_seed(seed)
    net = build_network("mednext", variant="S", in_channels=2, num_classes=3, n_channels=4, deep_supervision=True,
                        **kwargs).eval()
    with torch.no_grad():  # move norms/GRN away from their identity initialisation so they matter
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


@pytest.mark.parametrize("kwargs", [{}, {"norm": "layer", "grn": True}, {"dim": 2}, {"dim": 2, "grn": True},
                                    {"kernel_size": 5, "residual_up_down": False}, {"residual": False}])
def test_plain_forward_equals_fast_forward(kwargs):
    net = _randomised(0, **kwargs)
    dim = kwargs.get("dim", 3)
    x = torch.randn((2, 2) + (32,) * (dim - 1) + (16,))
    plain = exportable(net)
    assert isinstance(plain, PlainMedNeXt)
    with torch.no_grad():
        out = plain(x)  # full-resolution logits even with deep supervision on
        net.deep_supervision = False
        ref = net(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() <= 1e-4


def test_plain_shares_parameters():
    net = _randomised(1)
    plain = exportable(net)
    assert {id(p) for p in plain.parameters()} == {id(p) for p in net.parameters()}


def test_other_networks_pass_through():
    conv = torch.nn.Conv2d(1, 2, 3)
    assert exportable(conv) is conv


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kernel,stride,output_padding", [
    ((3, 3, 3), (2, 2, 2), (0, 0, 0)), ((5, 5, 5), (2, 2, 2), (0, 0, 0)), ((1, 3, 3), (1, 2, 2), (0, 0, 0)),
    ((1, 1, 1), (2, 2, 2), (0, 0, 0)), ((3, 5, 1), (2, 1, 2), (1, 0, 1)), ((3, 3, 3), (3, 2, 1), (2, 0, 0))])
def test_depthwise_transposed_phases_equal_the_native_op(dim, kernel, stride, output_padding):
    """Every tap/phase case the up blocks can meet, incl. phases no tap reaches and output padding."""
    from mednext_fw.inference.backends.plain import _depthwise_transposed

    kernel, stride, output_padding = kernel[-dim:], stride[-dim:], output_padding[-dim:]
    conv = (torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)[dim - 2](
        4, 4, kernel, stride=stride, padding=[k // 2 for k in kernel], output_padding=output_padding, groups=4)
    x = torch.randn((2, 4) + (7, 6, 5)[-dim:])
    with torch.no_grad():
        assert (_depthwise_transposed(x, conv) - conv(x)).abs().max().item() <= 1e-5
