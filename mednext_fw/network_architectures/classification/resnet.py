"""Frozen ResNet-18 front (conv1, bn1, relu, maxpool, layer1) pooled to 64 features.

Its BatchNorms always run with their running statistics: the owner must keep this module in eval
mode (``XrayMoE.train`` does), so neither the outputs nor the statistics drift while training.
"""
from __future__ import annotations

import torch
from torch import nn

from mednext_fw.network_architectures.classification.layers import BasicBlock


class ResNet18Layer1(nn.Module):
    out_features = 64

    def __init__(self, in_chans: int = 3, frozen: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(64), BasicBlock(64))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer1(x).mean(dim=(2, 3))
