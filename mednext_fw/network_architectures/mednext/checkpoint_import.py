"""Import MedNeXt weights from the reference implementation (MIC-DKFZ/MedNeXt) and from MONAI.

Tensors have identical shapes in all three; only the names differ. Key mapping
(``i`` = resolution level 0..3 with 0 = full resolution, ``j`` = block index in a stage):

================================  ==============================  ==================================
ours                              reference (nnU-Net v1 ``.model``)  MONAI ``MedNeXt``
================================  ==============================  ==================================
stem.*                            stem.*                          stem.*
encoder.i.j.<B>                   enc_block_i.j.<B>               enc_stages.i.j.<B>
down.i.<B>                        down_i.<B>                      down_blocks.i.<B>
bottleneck.j.<B>                  bottleneck.j.<B>                bottleneck.j.<B>
up.i.<B>                          up_i.<B>                        up_blocks.(3-i).<B>
decoder.i.j.<B>                   dec_block_i.j.<B>               dec_stages.(3-i).j.<B>
heads.0.proj.*                    out_0.conv_out.*                out_0.conv_out.*
heads.i.proj.* (i = 1..4)         out_i.conv_out.*                out_blocks.(4-i).conv_out.*
(none)                            dummy_tensor (ignored)          (none)
================================  ==============================  ==================================

Inside a block ``<B>``: ``dw`` = conv1 (depthwise), ``norm`` = norm, ``expand`` = conv2,
``compress`` = conv3, ``shortcut`` = res_conv, ``grn.gamma``/``grn.beta`` = ``grn_gamma``/``grn_beta``
(reference) or ``global_resp_gamma``/``global_resp_beta`` (MONAI).

MONAI differs from the reference in one place that changes shapes: its down block i uses
encoder stage i's expansion ratio (the reference uses stage i+1's). ``arch_from_state_dict``
reads the ratios from the tensors, so a MONAI B/M/L model is rebuilt with ``down_exp_r`` set.
A reference checkpoint is a dict ``{'state_dict': ...}`` saved with ``torch.save`` (``.model`` or
``.pth``); DataParallel/DDP ``module.`` prefixes are stripped.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Mapping

import torch

from mednext_fw.errors import UserError
from mednext_fw.network_architectures.mednext.model import MedNeXt, MedNeXtArch

_BLOCK_REF = {"conv1": "dw", "conv2": "expand", "conv3": "compress", "res_conv": "shortcut", "norm": "norm",
              "grn_gamma": "grn.gamma", "grn_beta": "grn.beta"}
_BLOCK_MONAI = dict(_BLOCK_REF, global_resp_gamma="grn.gamma", global_resp_beta="grn.beta")
_BLOCK_REF_INV = {v: k for k, v in _BLOCK_REF.items()}


class CheckpointImportError(UserError, ValueError):
    pass


def _block(rest: str, table: Mapping[str, str], source: str) -> str:
    head, _, tail = rest.partition(".")
    if head in table:
        return table[head] + ("." + tail if tail else "")
    raise CheckpointImportError(f"unexpected MedNeXt block parameter '{rest}' in {source}")


def _from_reference_key(key: str, source: str) -> str | None:
    if key == "dummy_tensor":
        return None
    if key.startswith("stem."):
        return key
    rules = [
        (r"enc_block_(\d)\.(\d+)\.(.+)", lambda m: f"encoder.{m[1]}.{m[2]}.{_block(m[3], _BLOCK_REF, source)}"),
        (r"down_(\d)\.(.+)", lambda m: f"down.{m[1]}.{_block(m[2], _BLOCK_REF, source)}"),
        (r"bottleneck\.(\d+)\.(.+)", lambda m: f"bottleneck.{m[1]}.{_block(m[2], _BLOCK_REF, source)}"),
        (r"up_(\d)\.(.+)", lambda m: f"up.{m[1]}.{_block(m[2], _BLOCK_REF, source)}"),
        (r"dec_block_(\d)\.(\d+)\.(.+)", lambda m: f"decoder.{m[1]}.{m[2]}.{_block(m[3], _BLOCK_REF, source)}"),
        (r"out_(\d)\.conv_out\.(weight|bias)", lambda m: f"heads.{m[1]}.proj.{m[2]}"),
    ]
    return _apply(rules, key, source)


def _from_monai_key(key: str, source: str) -> str | None:
    if key.startswith("stem."):
        return key
    rules = [
        (r"enc_stages\.(\d)\.(\d+)\.(.+)", lambda m: f"encoder.{m[1]}.{m[2]}.{_block(m[3], _BLOCK_MONAI, source)}"),
        (r"down_blocks\.(\d)\.(.+)", lambda m: f"down.{m[1]}.{_block(m[2], _BLOCK_MONAI, source)}"),
        (r"bottleneck\.(\d+)\.(.+)", lambda m: f"bottleneck.{m[1]}.{_block(m[2], _BLOCK_MONAI, source)}"),
        (r"up_blocks\.(\d)\.(.+)", lambda m: f"up.{3 - int(m[1])}.{_block(m[2], _BLOCK_MONAI, source)}"),
        (r"dec_stages\.(\d)\.(\d+)\.(.+)",
         lambda m: f"decoder.{3 - int(m[1])}.{m[2]}.{_block(m[3], _BLOCK_MONAI, source)}"),
        (r"out_0\.conv_out\.(weight|bias)", lambda m: f"heads.0.proj.{m[1]}"),
        (r"out_blocks\.(\d)\.conv_out\.(weight|bias)", lambda m: f"heads.{4 - int(m[1])}.proj.{m[2]}"),
    ]
    return _apply(rules, key, source)


def _apply(rules, key: str, source: str) -> str:
    for pattern, build in rules:
        m = re.fullmatch(pattern, key)
        if m:
            return build(m)
    raise CheckpointImportError(f"unexpected key '{key}' in {source}: not a MedNeXt parameter of that format")


def _convert(state: Mapping[str, torch.Tensor], rename: Callable[[str, str], str | None], source: str):
    out = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        new = rename(key, source)
        if new is not None:
            out[new] = value
    return out


def convert_reference_state_dict(state: Mapping[str, torch.Tensor], source: str = "state dict") -> dict:
    """Reference (MIC-DKFZ/MedNeXt) names -> ours; drops ``dummy_tensor`` and ``module.`` prefixes."""
    return _convert(state, _from_reference_key, source)


def convert_monai_state_dict(state: Mapping[str, torch.Tensor], source: str = "state dict") -> dict:
    """MONAI ``MedNeXt`` names -> ours."""
    return _convert(state, _from_monai_key, source)


def to_reference_state_dict(state: Mapping[str, torch.Tensor]) -> dict:
    """Ours -> reference names (plus its ``dummy_tensor``), e.g. to run our weights in the reference code."""
    out = {"dummy_tensor": torch.ones(1)}
    tops = [(r"encoder\.(\d)\.(\d+)\.(.+)", "enc_block_{0}.{1}."), (r"down\.(\d)\.(.+)", "down_{0}."),
            (r"bottleneck\.(\d+)\.(.+)", "bottleneck.{0}."), (r"up\.(\d)\.(.+)", "up_{0}."),
            (r"decoder\.(\d)\.(\d+)\.(.+)", "dec_block_{0}.{1}.")]
    for key, value in state.items():
        if key.startswith("stem."):
            out[key] = value
            continue
        m = re.fullmatch(r"heads\.(\d)\.proj\.(weight|bias)", key)
        if m:
            out[f"out_{m[1]}.conv_out.{m[2]}"] = value
            continue
        for pattern, prefix in tops:
            m = re.fullmatch(pattern, key)
            if m:
                rest = m.groups()[-1]
                inner = next(k for k in sorted(_BLOCK_REF_INV, key=len, reverse=True) if rest.startswith(k))
                out[prefix.format(*m.groups()[:-1]) + _BLOCK_REF_INV[inner] + rest[len(inner):]] = value
                break
        else:
            raise CheckpointImportError(f"unexpected key '{key}' in our state dict")
    return out


def _level_kernels(state: Mapping[str, torch.Tensor], n: int) -> list[tuple[int, ...]]:
    """Per level, the depthwise kernel shape of its first block (down/up blocks use their level's kernel)."""
    out = []
    for lvl in range(n + 1):
        keys = ([f"encoder.{lvl}.0.dw.weight", f"down.{lvl}.dw.weight"] if lvl < n else
                ["bottleneck.0.dw.weight"])
        key = next((k for k in keys if k in state), None)
        out.append(tuple(state[key].shape[2:]) if key else out[-1])
    return out


def arch_from_state_dict(state: Mapping[str, torch.Tensor], norm: str = "group") -> MedNeXtArch:
    """Rebuild the architecture from an (our-named) state dict. The norm kind is not visible in shapes, and
    neither are strides: every down-sampling is taken as stride 2 on every axis (the reference's)."""
    try:
        stem = state["stem.weight"]
        c, in_ch = stem.shape[:2]
        dim = stem.dim() - 2
        n = len({k.split(".")[1] for k in state if k.startswith("down.")})
        counts = [len({k.split(".")[2] for k in state if k.startswith(f"encoder.{i}.")}) for i in range(n)]
        counts.append(len({k.split(".")[1] for k in state if k.startswith("bottleneck.")}))
        counts += [len({k.split(".")[2] for k in state if k.startswith(f"decoder.{i}.")}) for i in reversed(range(n))]
        exp = [state[f"down.{i}.expand.weight"].shape[0] // (c << i) for i in range(n)]
        dec = [state[f"up.{i}.expand.weight"].shape[0] // (c << (i + 1)) for i in range(n)]
        exp_r = tuple(state[f"encoder.{i}.0.expand.weight"].shape[0] // (c << i) if counts[i] else exp[i]
                      for i in range(n))
        bott = state["bottleneck.0.expand.weight"].shape[0] // (c << n) if counts[n] else exp[n - 1]
        exp_r = exp_r + (bott,) + tuple(dec[i] for i in reversed(range(n)))
        down = tuple(exp)
        kernels = _level_kernels(state, n)
        uniform = len(set(kernels)) == 1 and len(set(kernels[0])) == 1
        return MedNeXtArch(
            in_channels=int(in_ch), num_classes=int(state["heads.0.proj.weight"].shape[1]), n_channels=int(c),
            exp_r=exp_r, block_counts=tuple(counts), kernel_size=max(max(k) for k in kernels),
            dim=dim, deep_supervision="heads.1.proj.weight" in state, norm=norm,
            grn=any(k.endswith("grn.gamma") for k in state),
            residual_up_down="down.0.shortcut.weight" in state,
            down_exp_r=None if down == exp_r[1:n + 1] else down,
            strides=None if n == 4 and uniform else ((2,) * dim,) * n,
            kernel_sizes=None if n == 4 and uniform else tuple(kernels),
        )
    except (KeyError, IndexError) as exc:
        raise CheckpointImportError(f"state dict is not a complete MedNeXt: missing {exc}") from exc


def load_converted(model: MedNeXt, state: Mapping[str, torch.Tensor], source: str) -> MedNeXt:
    """Strict load with an error that names what does not fit."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or shape:
        detail = "; ".join(f"{name}: {keys[:5]}{' ...' if len(keys) > 5 else ''}" for name, keys in
                           (("missing", missing), ("unexpected", extra), ("shape mismatch", shape)) if keys)
        raise CheckpointImportError(f"{source} does not fit this MedNeXt ({detail})")
    model.load_state_dict(state)
    return model


def read_reference_checkpoint(path: str | Path) -> dict:
    """Read an nnU-Net v1 ``.model``/``.pth`` file (or a bare state dict) and return our-named tensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointImportError(f"checkpoint file not found: {path}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointImportError(f"cannot read checkpoint {path}: {exc}") from exc
    state = saved.get("state_dict", saved) if isinstance(saved, dict) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointImportError(f"{path} holds no MedNeXt state_dict")
    return convert_reference_state_dict(state, source=str(path))


def load_reference_checkpoint(path: str | Path, model: MedNeXt | None = None, norm: str = "group") -> MedNeXt:
    """Load a reference checkpoint into ``model``, or into a new MedNeXt rebuilt from its shapes."""
    state = read_reference_checkpoint(path)
    model = model if model is not None else MedNeXt(arch_from_state_dict(state, norm))
    return load_converted(model, state, str(path))


def load_monai_state_dict(state: Mapping[str, torch.Tensor], model: MedNeXt | None = None,
                          norm: str = "group") -> MedNeXt:
    """Load a MONAI ``MedNeXt`` state dict into ``model`` or into a MedNeXt rebuilt from its shapes."""
    ours = convert_monai_state_dict(state, source="MONAI state dict")
    model = model if model is not None else MedNeXt(arch_from_state_dict(ours, norm))
    return load_converted(model, ours, "MONAI state dict")
