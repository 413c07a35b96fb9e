import pytest
import torch

from mednext_fw.network_architectures.classification import auxiliary_loss, count_parameters, param_groups
from mednext_fw.network_architectures.classification.hovit import HoViT, create_hovit
from mednext_fw.network_architectures.registry import build_network

BIAS = ("attention_biases",)


def test_parameter_counts_at_9_classes():
    s = create_hovit("S", 9)
    b = create_hovit("B", 9, gumbel=False)
    assert count_parameters(s, exclude=BIAS) == 4_909_234
    assert count_parameters(b, exclude=BIAS) == 8_335_026
    assert count_parameters(s) == 4_911_390  # with the relative-position bias tables
    assert count_parameters(b) == 8_339_338
    gb = create_hovit("B", 9)  # + one 4-entry gate per stage
    assert count_parameters(gb, exclude=BIAS + ("gate_logits",)) == 8_335_026
    assert count_parameters(gb) == 8_339_338 + 8
    assert count_parameters(s.stage1.blocks[0], exclude=BIAS) == 527_872
    assert count_parameters(s.stage2.blocks[0], exclude=BIAS) == 1_185_024


def test_bias_tables_exist_before_any_forward_and_load_into_a_fresh_model():
    a, b = create_hovit("S", 3, img_size=64), create_hovit("S", 3, img_size=64)
    assert a.stage1.blocks[0].attn.attention_biases.shape == (4, 16)  # 4 heads x (4 x 4 offsets)
    assert a.stage2.blocks[0].attn.attention_biases.shape == (6, 4)
    assert "stage1.blocks.0.attn.attention_biases" in a.state_dict()
    assert not any("idxs" in k for k in a.state_dict())
    b.load_state_dict(a.state_dict())


def test_forward_shapes_sizes_and_errors():
    m = create_hovit("S", 5, img_size=48).eval()
    assert m(torch.randn(2, 3, 48, 48)).shape == (2, 5)
    with pytest.raises(ValueError, match="built for 48x48"):
        m(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="multiple of 16"):
        create_hovit("S", 5, img_size=40)
    with pytest.raises(ValueError, match="Unknown HoViT variant"):
        create_hovit("M", 5)


def test_registry_build_grayscale_and_trainer_hooks():
    m = build_network("hovit", in_channels=1, num_classes=3, variant="B", img_size=32)
    assert m.stem[0].conv.in_channels == 1
    out = m.train()(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 3)
    aux = auxiliary_loss(m)
    assert aux.item() == 0.0 and aux.ndim == 0
    groups = {g["name"]: g for g in param_groups(m, 1e-3, 1e-5)}
    assert groups["gates"]["lr"] == pytest.approx(1e-2) and len(groups["gates"]["params"]) == 2
    assert groups["decay"]["lr"] == pytest.approx(1e-3)
    m.on_train_step(0, 11)
    assert m.stage1.tau == pytest.approx(1.0)
    m.on_train_step(5, 11)
    assert m.stage2.tau == pytest.approx(0.55)
    m.on_train_step(10, 11)
    assert m.stage1.tau == pytest.approx(0.1)


def test_fuse_equals_eval_output():
    torch.manual_seed(0)
    m = HoViT(4, depths=(2, 2), img_size=32, dims=(32, 48), heads=(1, 1))
    m.train()(torch.randn(8, 3, 32, 32))  # move the BN statistics away from the identity
    m.eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        fused = m.fuse()
        assert torch.allclose(fused(x), m(x), atol=1e-4)
    assert fused.head_dist is None and not any(isinstance(x, torch.nn.BatchNorm1d) for x in fused.modules())
    with pytest.raises(ValueError, match="already"):
        fused.fuse()
