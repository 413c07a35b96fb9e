"""2D classifiers shipped as network plug-ins: the X-ray Mixture-of-Experts model and HoViT.

Both are registered through the ``mednext_fw.networks`` entry points in setup.py
(``xray_moe`` -> :func:`xray_moe.create_xray_moe`, ``hovit`` -> :func:`hovit.create_hovit`) and are
built as ``builder(in_channels=C, num_classes=K, **kwargs)``. ``in_channels`` sets the input
channels of the first convolutions (1 = grayscale works directly; pretrained 3-channel stem weights
are summed over their input channels when loaded, which equals repeating a gray image three times).

Conventions a classification trainer can rely on without knowing the model (defaults live in
:class:`base.ClassifierBase`; the free functions in :mod:`base` also accept foreign modules):

- ``forward(x)`` with ``x`` of shape ``(B, C, H, W)`` returns logits ``(B, num_classes)``.
- ``auxiliary_loss()`` returns a scalar tensor to *add* to the task loss after each forward pass
  (already weighted; the MoE load-balancing loss; zero for models without one).
- ``on_train_step(step, total_steps)`` is called once per optimiser step before the forward pass
  (HoViT anneals its Gumbel temperature linearly from ``tau_max`` to ``tau_min``; no-op otherwise).
- ``param_groups(base_lr, weight_decay)`` returns optimiser parameter groups holding only trainable
  parameters (frozen parts such as the X-ray MoE's ResNet-18 are left out; HoViT's Gumbel gates get
  ``gate_lr_mult`` x the base learning rate; biases, norms, gates and bias tables get no decay).
"""
from mednext_fw.network_architectures.classification.base import (
    ClassifierBase,
    auxiliary_loss,
    count_parameters,
    on_train_step,
    param_groups,
)
from mednext_fw.network_architectures.classification.hovit import create_hovit
from mednext_fw.network_architectures.classification.xray_moe import create_xray_moe

__all__ = ["ClassifierBase", "auxiliary_loss", "count_parameters", "create_hovit", "create_xray_moe", "on_train_step",
           "param_groups"]
