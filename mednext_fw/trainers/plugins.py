"""The two 2D classifier trainers that ship in the box, registered through setup.py entry points
(``mednext_fw.trainers``: ``XrayMoE``, ``HoViT``) exactly like third-party plug-ins.

``mednext_train 2d_cls FOLD -d DATASET -tr XrayMoE`` (or ``-tr HoViT``). Each class only names its
network, a preset and its recipe (facts: ../shared/reference/classifiers_2d.md); everything else is
:class:`ClassificationTrainer`. Command-line flags override the recipe: ``--epochs``, ``--lr``,
``--batch-size``, ``-m B`` (HoViT-B) and ``--network-kwargs '{"width": "xxlarge"}'``. The planner's
defaults (augmentation preset ``default``, cosine LR) are not the recipes'; plans.json's
``configurations.2d_cls.extra`` restores them: ``"augmentation": {"preset": "none"}`` and
``"lr_schedule": "constant"``.
"""
from __future__ import annotations

from typing import Any

from mednext_fw.trainers.classification import ClassificationTrainer


class XrayMoETrainer(ClassificationTrainer):
    """ConvNeXt slice + noisy top-k MoE. Recipe: Adam lr 2e-4, no schedule, 100 epochs, plain CE (+ our
    load-balancing loss, built into the model). Preset ``tiny`` widths (96/192) so CPUs can train it;
    ``{"width": "xxlarge"}`` is the paper's 24.5M model."""

    trainer_name = "XrayMoE"
    network_name = "xray_moe"
    network_preset = {"width": "tiny", "num_experts": 10, "k": 3, "hidden": 128}
    settings_defaults = {**ClassificationTrainer.settings_defaults, "num_epochs": 100, "lr": 2e-4}

    @classmethod
    def preset_for_input(cls, input_size: int) -> dict[str, Any]:
        # The reference resizes the MoE branch's input to 224 for ImageNet ResNet-18 weights; without
        # such weights (nothing is downloaded) the planned size serves as well and costs far less.
        return {"moe_input_size": input_size}


class HoViTTrainer(ClassificationTrainer):
    """HoViT-S (2+2 blocks; ``-m B`` for the 4+4 Gumbel-gated model). Recipe: Adam lr 5e-4, no schedule,
    30 epochs, batch 32, no augmentation (the ``none`` preset); Gumbel gates at 10x LR and tau annealed
    1.0 -> 0.1 per step."""

    trainer_name = "HoViT"
    network_name = "hovit"
    network_preset = {"variant": "S"}
    settings_defaults = {**ClassificationTrainer.settings_defaults, "num_epochs": 30, "lr": 5e-4}

    @classmethod
    def preset_for_input(cls, input_size: int) -> dict[str, Any]:
        return {"img_size": input_size}  # the relative-position tables follow the token grid
