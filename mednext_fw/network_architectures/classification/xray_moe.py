"""X-ray MoE classifier: ConvNeXt stem + stages 0-1 next to a noisy top-k MoE over frozen ResNet-18 features.

``logits = Linear([pool(ConvNeXt slice(x)), MoE(pool(ResNet18 layer1(resize(x, 224))))])``.
Differences from the public code (kept deliberate): the ResNet-18 BatchNorms stay in eval mode while
training (the public code let their statistics drift) and Shazeer's importance + load balancing loss
is on by default (``balance_loss_weight=0`` switches it off); see moe.py for the formula.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mednext_fw.network_architectures.classification.base import ClassifierBase
from mednext_fw.network_architectures.classification.convnext import ConvNeXtSlice
from mednext_fw.network_architectures.classification.moe import NoisyTopKMoE
from mednext_fw.network_architectures.classification.resnet import ResNet18Layer1


class XrayMoE(ClassifierBase):
    def __init__(self, num_classes: int, width: str = "xxlarge", num_experts: int = 10, k: int = 3,
                 hidden: int = 128, balance_loss_weight: float = 1e-2, in_chans: int = 3,
                 noisy_gating: bool = True, moe_input_size: int = 224):
        super().__init__()
        self.num_classes = num_classes
        self.moe_input_size = moe_input_size
        self.backbone = ConvNeXtSlice(in_chans, width)
        self.resnet = ResNet18Layer1(in_chans, frozen=True)
        self.moe = NoisyTopKMoE(ResNet18Layer1.out_features, hidden, num_experts, k, noisy_gating,
                                balance_loss_weight)
        self.classifier = nn.Linear(self.backbone.out_features + hidden, num_classes)
        self._aux: torch.Tensor | None = None
        self.last_gates: torch.Tensor | None = None
        self.resnet.eval()

    def train(self, mode: bool = True) -> "XrayMoE":
        super().train(mode)
        self.resnet.eval()  # frozen part: running statistics only
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels_last: the ResNet convs run ~2x faster on CPU, and ConvNeXt's permutes become free
        x = x.contiguous(memory_format=torch.channels_last)
        features = self.backbone(x)
        r = x
        if tuple(x.shape[-2:]) != (self.moe_input_size, self.moe_input_size):
            r = F.interpolate(x, size=(self.moe_input_size,) * 2, mode="bilinear", align_corners=False)
        with torch.no_grad():
            r = self.resnet(r)
        expert_out, gates, aux = self.moe(r)
        self._aux, self.last_gates = aux, gates.detach()
        return self.classifier(torch.cat([features, expert_out.to(features.dtype)], dim=1))

    def auxiliary_loss(self) -> torch.Tensor:
        return self._aux if self._aux is not None else super().auxiliary_loss()


def create_xray_moe(num_classes: int, width: str = "xxlarge", num_experts: int = 10, k: int = 3,
                    hidden: int = 128, balance_loss_weight: float = 1e-2, in_chans: int = 3,
                    in_channels: int | None = None, noisy_gating: bool = True, moe_input_size: int = 224,
                    convnext_weights: str | None = None, resnet_weights: str | None = None) -> XrayMoE:
    """Build the model; ``in_channels`` (the trainer's name) and ``in_chans`` are the same setting.

    ``convnext_weights`` / ``resnet_weights``: local timm- or torchvision-format checkpoint files of
    convnext_<width> / resnet18, loaded by key mapping (nothing is downloaded).
    """
    if in_channels is not None and in_chans not in (3, in_channels):
        raise ValueError(f"in_channels={in_channels} and in_chans={in_chans} disagree; pass only one")
    model = XrayMoE(num_classes, width, num_experts, k, hidden, balance_loss_weight,
                    in_channels if in_channels is not None else in_chans, noisy_gating, moe_input_size)
    if convnext_weights is not None or resnet_weights is not None:
        from mednext_fw.network_architectures.classification import pretrained

        if convnext_weights is not None:
            pretrained.load_convnext_slice(model.backbone, convnext_weights)
        if resnet_weights is not None:
            pretrained.load_resnet18_layer1(model.resnet, resnet_weights)
    return model
