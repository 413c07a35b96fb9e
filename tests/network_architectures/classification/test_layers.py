import torch
import torch.nn.functional as F
from torch import nn

from mednext_fw.network_architectures.classification.layers import (
    ConvNeXtBlock, ConvNorm, LayerNorm2d, LinearNorm, NormLinear, fuse_bn_linear, fuse_conv_bn, fuse_linear_bn)


def _randomise_bn(bn):
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_()
        bn.bias.normal_()
    return bn.eval()


def test_layernorm2d_normalises_channels():
    x = torch.randn(2, 5, 3, 4)
    ln = LayerNorm2d(5)
    with torch.no_grad():
        ln.weight.normal_()
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (5,), ln.weight, ln.bias, ln.eps).permute(0, 3, 1, 2)
    assert torch.allclose(ln(x), ref, atol=1e-6)


def test_convnext_block_parameter_formula():
    d = 24
    assert sum(p.numel() for p in ConvNeXtBlock(d).parameters()) == 8 * d * d + 58 * d


def test_linear_bn_fusion_matches_eval_output():
    ln = LinearNorm(6, 5)
    _randomise_bn(ln.bn)
    x = torch.randn(3, 7, 6)
    assert torch.allclose(fuse_linear_bn(ln.linear, ln.bn)(x), ln(x), atol=1e-5)


def test_conv_bn_fusion_matches_eval_output():
    cn = ConvNorm(3, 4)
    _randomise_bn(cn.bn)
    x = torch.randn(2, 3, 9, 9)
    assert torch.allclose(fuse_conv_bn(cn.conv, cn.bn)(x), cn(x), atol=1e-5)


def test_bn_then_linear_fusion_matches_eval_output():
    head = NormLinear(8, 3).eval()
    _randomise_bn(head.bn)
    x = torch.randn(4, 8)
    assert torch.allclose(fuse_bn_linear(head.bn, head.linear)(x), head(x), atol=1e-5)
    assert isinstance(fuse_bn_linear(head.bn, head.linear), nn.Linear)
