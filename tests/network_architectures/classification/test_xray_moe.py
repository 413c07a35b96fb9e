import pytest
import torch

from mednext_fw.network_architectures.classification import auxiliary_loss, count_parameters, param_groups
from mednext_fw.network_architectures.classification.xray_moe import create_xray_moe
from mednext_fw.network_architectures.registry import build_network


def test_xxlarge_474_class_parameter_counts():
    with torch.device("meta"):
        m = create_xray_moe(474)
    assert count_parameters(m) == 24_526_254
    assert count_parameters(m, trainable_only=True) == 24_368_750
    assert count_parameters(m.moe) == 84_500
    assert count_parameters(m.classifier) == 425_178


def test_tiny_count_forward_and_auxiliary_loss():
    torch.manual_seed(0)
    m = create_xray_moe(474, width="tiny")
    assert count_parameters(m) == 1_629_198
    m = create_xray_moe(4, width="tiny", num_experts=4, k=2, hidden=16)
    logits = m.train()(torch.randn(3, 3, 96, 96))  # MoE branch is resized to 224 internally
    assert logits.shape == (3, 4)
    aux = auxiliary_loss(m)
    assert aux.ndim == 0 and aux.requires_grad and aux.item() > 0
    (logits.sum() + aux).backward()
    assert m.moe.w_gate.weight.grad is not None
    assert all(p.grad is None for p in m.resnet.parameters())
    assert ((m.last_gates > 0).sum(1) == 2).all()


def test_frozen_resnet_batchnorm_stays_in_eval_mode():
    m = create_xray_moe(3, width="tiny", hidden=8).train()
    assert m.training and m.backbone.training
    assert not any(mod.training for mod in m.resnet.modules())
    before = m.resnet.bn1.running_mean.clone()
    m(torch.randn(2, 3, 64, 64) * 5 + 3)
    assert torch.equal(m.resnet.bn1.running_mean, before)


def test_param_groups_leave_out_frozen_resnet():
    m = create_xray_moe(3, width="tiny", hidden=8)
    groups = param_groups(m, 1e-3, 0.05)
    ids = {id(p) for g in groups for p in g["params"]}
    assert not any(id(p) in ids for p in m.resnet.parameters())
    assert sum(p.numel() for g in groups for p in g["params"]) == count_parameters(m, trainable_only=True)
    assert {g["weight_decay"] for g in groups} == {0.05, 0.0}


def test_registry_build_with_grayscale_input_channels():
    m = build_network("xray_moe", in_channels=1, num_classes=3, width="tiny", hidden=8).eval()
    assert m.backbone.stem[0].in_channels == 1 and m.resnet.conv1.in_channels == 1
    assert m(torch.randn(2, 1, 64, 64)).shape == (2, 3)
    with pytest.raises(TypeError):
        build_network("xray_moe", in_channels=1, num_classes=3, widht="tiny")
    with pytest.raises(ValueError, match="disagree"):
        create_xray_moe(3, in_chans=3 + 1, in_channels=1, width="tiny")
