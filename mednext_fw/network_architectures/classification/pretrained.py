"""Load pretrained weights from local checkpoint files by key mapping (nothing is downloaded).

Supported sources: timm- and torchvision-format ConvNeXt checkpoints (stem + stages 0-1 are used),
timm/torchvision ResNet-18 (conv1, bn1, layer1 are used; both libraries use the same names), timm
LeViT-256 checkpoints (its 16x conv stem is HoViT's, 3 -> 32 -> 64 -> 128 -> 256; current
``stem.convN`` and older ``patch_embed.N`` names), and HoViT baselines saved by this package. Keys of the full source model that the slice does not use
are dropped; any other key, a missing key or a shape mismatch raises :class:`PretrainedLoadError`
naming the file. A 3-channel first conv is adapted to 1 input channel by summing over its input
channels (equal to feeding the gray image three times).
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from mednext_fw.errors import UserError

_WRAPPER_KEYS = ("network_state", "state_dict", "model")


class PretrainedLoadError(UserError, ValueError):
    pass


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise PretrainedLoadError(f"{path}: checkpoint file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except ImportError as exc:
        raise PretrainedLoadError(f"{path}: reading .safetensors needs the 'safetensors' package") from exc
    except Exception as exc:
        raise PretrainedLoadError(f"{path}: not a readable torch/safetensors checkpoint ({exc})") from exc
    for key in _WRAPPER_KEYS:
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise PretrainedLoadError(f"{path}: expected a state dict of tensors")
    return {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}


# (pattern, replacement or None for "known but unused by the slice")
_CONVNEXT_TIMM = [
    (r"^stem\.(\d)\.(.+)$", r"stem.\1.\2"),
    (r"^stages\.([01])\.(.+)$", r"stages.\1.\2"),
    (r"^(stages\.[2-9]|head|norm_pre)\..+$", None),
]
_CONVNEXT_TORCHVISION = [
    (r"^features\.0\.([01])\.(.+)$", r"stem.\1.\2"),
    (r"^features\.1\.(\d+)\.layer_scale$", r"stages.0.blocks.\1.gamma"),
    (r"^features\.3\.(\d+)\.layer_scale$", r"stages.1.blocks.\1.gamma"),
    (r"^features\.1\.(\d+)\.block\.0\.(.+)$", r"stages.0.blocks.\1.conv_dw.\2"),
    (r"^features\.1\.(\d+)\.block\.2\.(.+)$", r"stages.0.blocks.\1.norm.\2"),
    (r"^features\.1\.(\d+)\.block\.3\.(.+)$", r"stages.0.blocks.\1.mlp.fc1.\2"),
    (r"^features\.1\.(\d+)\.block\.5\.(.+)$", r"stages.0.blocks.\1.mlp.fc2.\2"),
    (r"^features\.2\.([01])\.(.+)$", r"stages.1.downsample.\1.\2"),
    (r"^features\.3\.(\d+)\.block\.0\.(.+)$", r"stages.1.blocks.\1.conv_dw.\2"),
    (r"^features\.3\.(\d+)\.block\.2\.(.+)$", r"stages.1.blocks.\1.norm.\2"),
    (r"^features\.3\.(\d+)\.block\.3\.(.+)$", r"stages.1.blocks.\1.mlp.fc1.\2"),
    (r"^features\.3\.(\d+)\.block\.5\.(.+)$", r"stages.1.blocks.\1.mlp.fc2.\2"),
    (r"^(features\.[4-9]|classifier)\..+$", None),
]
_RESNET = [
    (r"^(conv1|bn1|layer1)\.(.+)$", r"\1.\2"),
    (r"^(layer[2-4]|fc)\..+$", None),
]


_LEVIT_STEM = [
    (r"^stem\.conv([1-4])\.(linear|bn)\.(.+)$",
     lambda m: f"{2 * (int(m.group(1)) - 1)}.{'conv' if m.group(2) == 'linear' else 'bn'}.{m.group(3)}"),
    (r"^patch_embed\.([0246])\.(c|bn)\.(.+)$",
     lambda m: f"{m.group(1)}.{'conv' if m.group(2) == 'c' else 'bn'}.{m.group(3)}"),
    (r"^(stages|blocks|head|head_dist)\..+$", None),
]


def _map_keys(sd: dict[str, torch.Tensor], rules, path: Path, what: str) -> dict[str, torch.Tensor]:
    out, unknown = {}, []
    for key, value in sd.items():
        for pattern, repl in rules:
            if re.match(pattern, key):
                if repl is not None:
                    out[re.sub(pattern, repl, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise PretrainedLoadError(f"{path}: {len(unknown)} key(s) unknown for a {what} checkpoint, "
                                  f"e.g. {unknown[:5]}")
    return out


def _adapt_in_chans(w: torch.Tensor, in_chans: int) -> torch.Tensor:
    if in_chans == 1:
        return w.sum(dim=1, keepdim=True)
    reps = -(-in_chans // w.shape[1])
    return w.repeat(1, reps, 1, 1)[:, :in_chans] * (w.shape[1] / in_chans)


def _load_mapped(module: nn.Module, mapped: dict[str, torch.Tensor], path: Path, what: str,
                 first_conv: str, may_miss: tuple[str, ...] = ()) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in mapped and not any(m in k for m in may_miss)]
    unexpected = [k for k in mapped if k not in own]
    if missing or unexpected:
        raise PretrainedLoadError(f"{path}: does not fit the {what}: missing {missing[:5]} "
                                  f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})")
    fixed = {}
    for key, value in mapped.items():
        target = own[key]
        if key == first_conv and value.ndim == 4 and value.shape[1] != target.shape[1]:
            value = _adapt_in_chans(value, target.shape[1])
        if key.endswith(".gamma") and value.ndim == 3:  # torchvision stores layer scale as (C, 1, 1)
            value = value.reshape(-1)
        if value.shape != target.shape:
            raise PretrainedLoadError(f"{path}: '{key}' has shape {tuple(value.shape)}, the {what} "
                                      f"needs {tuple(target.shape)}")
        fixed[key] = value.to(target.dtype)
    module.load_state_dict(fixed, strict=not may_miss)


def load_convnext_slice(module: nn.Module, path: str | Path) -> None:
    """Fill a :class:`convnext.ConvNeXtSlice` from a timm or torchvision ConvNeXt checkpoint."""
    path = Path(path)
    sd = read_state_dict(path)
    if any(k.startswith("stem.") for k in sd):
        rules = _CONVNEXT_TIMM
    elif any(k.startswith("features.0.") for k in sd):
        rules = _CONVNEXT_TORCHVISION
    else:
        raise PretrainedLoadError(f"{path}: neither a timm ('stem.*') nor a torchvision ('features.*') "
                                  f"ConvNeXt checkpoint")
    what = f"ConvNeXt-{getattr(module, 'width', '?')} stem + stages 0-1"
    _load_mapped(module, _map_keys(sd, rules, path, "ConvNeXt"), path, what, "stem.0.weight")


def load_resnet18_layer1(module: nn.Module, path: str | Path) -> None:
    """Fill a :class:`resnet.ResNet18Layer1` from a timm or torchvision ResNet-18 checkpoint."""
    path = Path(path)
    mapped = _map_keys(read_state_dict(path), _RESNET, path, "ResNet-18")
    # older torchvision files predate BatchNorm's num_batches_tracked counter
    _load_mapped(module, mapped, path, "ResNet-18 conv1/bn1/layer1", "conv1.weight",
                 may_miss=("num_batches_tracked",))


def load_levit_stem(stem: nn.Module, path: str | Path) -> None:
    """Fill HoViT's stem (``model.stem``) from a timm LeViT-256 checkpoint (ImageNet weights)."""
    path = Path(path)
    mapped = _map_keys(read_state_dict(path), _LEVIT_STEM, path, "LeViT")
    _load_mapped(stem, mapped, path, "HoViT stem (LeViT-256's 3-32-64-128-256)", "0.conv.weight",
                 may_miss=("num_batches_tracked",))


def load_hovit_baseline(model: nn.Module, path: str | Path) -> None:
    """Load a HoViT checkpoint saved without LoRA/gates; gates and LoRA keep their initial values."""
    path = Path(path)
    sd = read_state_dict(path)
    _load_mapped(model, sd, path, "HoViT", "stem.0.conv.weight", may_miss=("gate_logits", "lora_"))
