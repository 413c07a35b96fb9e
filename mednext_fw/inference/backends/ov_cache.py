"""OpenVINO models kept between runs: a network's converted graph (IR) and OpenVINO's compiled blobs.

Exporting, converting and compiling a full-width MedNeXt-S costs ~7-8 s per network (fold) on the
project's 2-core CPU, every run; from this cache the same model is ready in ~1 s (IR read 0.1 s,
blob import 0.9 s). An entry's key hashes everything its graph depends on: the network's parameters
and buffers, its structure (``repr``: strides, kernels, padding), the graph formulation (the source
of ``plain.py`` and ``onnx_export.py``), the norm formulation and the OpenVINO version.

An entry is a folder written under a temporary name and renamed (``io.atomic``), so a run killed
while saving leaves nothing a later run reads; such leftovers are swept when the cache is opened.
OpenVINO writes its compiled blobs itself (``CACHE_DIR``) and recompiles a blob it cannot import.

Where: ``$MEDNEXT_cache`` (``off`` turns the cache off), else ``$XDG_CACHE_HOME/mednext_fw`` or
``~/.cache/mednext_fw``. A cache folder that cannot be written is skipped, not an error.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from mednext_fw.io.atomic import atomic_path, sweep_temporaries

log = logging.getLogger(__name__)
ENV = "MEDNEXT_cache"


def cache_root() -> Path | None:
    """The cache folder (created), or None when turned off or not writable."""
    value = os.environ.get(ENV)
    if value and value.strip().lower() == "off":
        return None
    if value:
        root = Path(value).expanduser()
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mednext_fw"
    root = root / "openvino"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.info("OpenVINO model cache off: cannot create %s (%s)", root, exc)
        return None
    return root if os.access(root, os.W_OK) else None


def model_key(net: nn.Module, fused_norm: bool) -> str:
    """Hash of what the exported graph of ``net`` depends on (see the module docstring)."""
    import openvino

    from mednext_fw.inference.backends import onnx_export, plain

    h = hashlib.sha256()
    for part in (openvino.__version__, str(fused_norm), repr(net)):
        h.update(part.encode() + b"\0")
    for module in (plain, onnx_export):
        h.update(Path(module.__file__).read_bytes())
    for name, tensor in net.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:32]


def blob_dir() -> Path | None:
    """Where OpenVINO keeps compiled blobs (its ``CACHE_DIR``), or None with the cache off."""
    root = cache_root()
    return None if root is None else root / "blobs"


def is_cached(net: nn.Module, fused_norm: bool = True) -> bool:
    """Whether ``net``'s model is in the cache (what ``auto`` weighs: set-up ~1-2 s instead of ~8)."""
    root = cache_root()
    if root is None:
        return False
    try:
        return _complete(root / model_key(net, fused_norm))
    except ImportError:  # no OpenVINO: nothing to have cached
        return False


def _complete(entry: Path) -> bool:
    return (entry / "model.xml").is_file() and (entry / "model.bin").is_file()


def load_or_convert(net: nn.Module, fused_norm: bool, convert: Callable[[], object]):
    """The ``ov.Model`` of ``net``: read from the cache, or ``convert()`` and saved there (full precision)."""
    import openvino as ov

    root = cache_root()
    if root is None:
        return convert()
    sweep_temporaries(root, recursive=False)
    entry = root / model_key(net, fused_norm)
    xml = entry / "model.xml"
    model = None
    if not _complete(entry):
        model = convert()
        try:
            with atomic_path(entry) as tmp:
                tmp.mkdir()
                ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        except OSError as exc:  # another process saved the same entry first, or the disk is full
            log.info("OpenVINO model not cached at %s (%s)", entry, exc)
    # read back even when just saved: OpenVINO keys its compiled blob by the model it is given, and
    # the model read from the IR is what later runs compile
    try:
        return ov.Core().read_model(str(xml))
    except RuntimeError as exc:  # an entry damaged after it was written: predict without the cache
        log.warning("OpenVINO model cache entry %s unreadable (%s); converting again", entry, exc)
        return model if model is not None else convert()
