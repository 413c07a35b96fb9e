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
                                    {"kernel_size": 5, "residual_up_down": False}, {"residual": False},
                                    {"grn": True, "strides": [[1, 2, 2], [2, 2, 2], [1, 2, 2], [2, 1, 1]],
                                     "kernel_sizes": [[1, 3, 3], [3, 3, 3], [1, 3, 3], [3, 3, 3], [3, 1, 3]]}])
@pytest.mark.parametrize("fused_norm", [False, True])
def test_plain_forward_equals_fast_forward(kwargs, fused_norm):
    net = _randomised(0, **kwargs)
    dim = kwargs.get("dim", 3)
    x = torch.randn((2, 2) + (32,) * (dim - 1) + (16,))
    plain = exportable(net, fused_norm)
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
    """Every tap/phase case the up blocks can meet, incl. phases no tap reaches and output padding:
    the phases interleaved and cropped by the lead planes are the native transposed conv."""
    from mednext_fw.inference.backends.plain import _front_planes, _interleave, _phase_outputs

    kernel, stride, output_padding = kernel[-dim:], stride[-dim:], output_padding[-dim:]
    conv = (torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)[dim - 2](
        4, 4, kernel, stride=stride, padding=[k // 2 for k in kernel], output_padding=output_padding, groups=4)
    x = torch.randn((2, 4) + (7, 6, 5)[-dim:])
    lead = _front_planes(conv)
    with torch.no_grad():
        full = _interleave([y for _, y in _phase_outputs(x, conv)], stride)
        out = full[(slice(None), slice(None)) + tuple(slice(ld, None) for ld in lead)]
        assert (out - conv(x)).abs().max().item() <= 1e-5


def test_an_up_block_whose_shortcut_is_padded_unlike_its_conv_is_refused():
    """The phase-wise up block adds the shortcut on the phase its weights reach, which assumes both
    convs pad the same planes in front (the builder's up blocks always do)."""
    net = _randomised(2)
    net.up[0].shortcut.output_padding = (1, 1, 1)
    with torch.no_grad(), pytest.raises(ValueError, match="padded unlike its conv"):
        exportable(net)(torch.randn(1, 2, 16, 16, 16))
