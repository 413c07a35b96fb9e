import torch
from torch import nn

from mednext_fw.network_architectures.classification.base import (
    ClassifierBase, auxiliary_loss, count_parameters, on_train_step, param_groups)


class _Tiny(ClassifierBase):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.gate_logits = nn.Parameter(torch.zeros(4))
        self.gate_lr_mult = 10.0

    def forward(self, x):
        return self.fc(x)


def test_defaults_of_the_convention():
    m = _Tiny()
    assert auxiliary_loss(m).item() == 0.0
    on_train_step(m, 3, 10)
    groups = {g["name"]: g for g in param_groups(m, 0.1, 0.01)}
    assert [p.shape for p in groups["decay"]["params"]] == [torch.Size([2, 3])]
    assert groups["no_decay"]["weight_decay"] == 0.0 and groups["gates"]["lr"] == 1.0


def test_foreign_modules_and_counting():
    plain = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    assert auxiliary_loss(plain) is None
    on_train_step(plain, 0, 1)
    assert sum(len(g["params"]) for g in param_groups(plain, 0.1, 0.0)) == 4
    plain[0].weight.requires_grad_(False)
    assert count_parameters(plain) == 12 and count_parameters(plain, trainable_only=True) == 6
    assert count_parameters(plain, exclude=("1.",)) == 8


def test_public_builders_importable_from_the_package():
    # Where users look, as create_mednext is importable from its own package.
    from mednext_fw.network_architectures import classification
    from mednext_fw.network_architectures.classification.hovit import HoViT
    from mednext_fw.network_architectures.classification.xray_moe import XrayMoE

    assert isinstance(classification.create_hovit(num_classes=3, img_size=32, in_channels=1), HoViT)
    assert classification.create_xray_moe.__annotations__["return"] in (XrayMoE, "XrayMoE")
