import torch

from mednext_fw.network_architectures.classification.hovit_blocks import Attention, relative_offset_index, stem16


def test_relative_offset_index_by_hand():
    idx = relative_offset_index(2)  # tokens (0,0) (0,1) (1,0) (1,1); index = |dy| * 2 + |dx|
    assert idx.tolist() == [[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1], [3, 2, 1, 0]]
    assert relative_offset_index(14).max() == 195 and relative_offset_index(7).shape == (49, 49)


def test_attention_matches_explicit_softmax_with_bias():
    torch.manual_seed(0)
    attn = Attention(dim=16, heads=2, resolution=3).eval()
    with torch.no_grad():
        attn.attention_biases.normal_()
    x = torch.randn(2, 9, 16)
    q, k, v = attn.qkv(x).view(2, 9, 3, 2, 64).permute(2, 0, 3, 1, 4)
    bias = attn.attention_biases[:, relative_offset_index(3)]
    w = torch.softmax(q @ k.transpose(-1, -2) * 64 ** -0.5 + bias, dim=-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(2, 9, 128))
    assert torch.allclose(attn(x), ref, atol=1e-5)
    attn.freeze_bias()
    assert torch.allclose(attn(x), ref, atol=1e-5)


def test_stem16_reduces_16x():
    stem = stem16(1, 64)
    assert stem(torch.randn(1, 1, 64, 48)).shape == (1, 64, 4, 3)
    assert sum(p.numel() for p in stem16(3, 256).parameters()) == 388_896
