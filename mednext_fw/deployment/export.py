"""``export_model``: a trained model folder -> one zip that installs and predicts anywhere.

Zip layout: ``manifest.json`` at the top, the model below ``<dataset>/<trainer>__<config>/``:
plans.json, dataset.json, postprocessing.json (when decided), ``fold_k/checkpoint_<chk>.pth`` slimmed
to what prediction reads (builder, weights, names, epoch: no optimiser or RNG state), and with
``onnx=True`` ``fold_k/network.onnx`` (full-resolution logits, dynamic batch and spatial sides).
"""
from __future__ import annotations

import datetime as _dt
import io
import zipfile
from pathlib import Path
from typing import Sequence

import torch

from mednext_fw import __version__
from mednext_fw.deployment.manifest import MANIFEST, DeploymentError, Manifest, plugin_ref
from mednext_fw.inference.model_folder import ModelFolder, load_checkpoint, network_from_checkpoint
from mednext_fw.inference.postprocessing import POSTPROCESSING_FILE
from mednext_fw.io.atomic import atomic_path
from mednext_fw.network_architectures.registry import input_channels

_KEEP = ("network_builder", "network_state", "trainer_name", "config_name", "epoch")
# Optional files of a model folder that travel with it when present (inference_instructions.json: the
# name reserved for find-best-configuration output, which this framework does not write yet).
OPTIONAL_FILES = (POSTPROCESSING_FILE, "inference_instructions.json")


def onnx_input_shape(folder: ModelFolder, net: torch.nn.Module, batch: int = 1) -> list[int]:
    config = folder.plans.configuration(folder.config_name)
    return [batch, input_channels(net) or folder.dataset.num_channels, *config.patch_size]


def _checkpoint_bytes(ckpt: dict) -> bytes:
    buf = io.BytesIO()
    torch.save({k: ckpt[k] for k in _KEEP if k in ckpt}, buf)
    return buf.getvalue()


def collect_files(folder: ModelFolder, folds: Sequence[int] | None, checkpoint: str,
                  onnx: bool = False) -> tuple[Manifest, dict[str, bytes]]:
    """The manifest (without hashes) and the bytes of every file, keyed by path inside the model folder."""
    folds = sorted(int(f) for f in folds) if folds else folder.folds(checkpoint)
    if not folds:
        raise DeploymentError(f"{folder.path}: no fold holds checkpoint_{checkpoint}.pth")
    files = {name: (folder.path / name).read_bytes() for name in ("plans.json", "dataset.json") + OPTIONAL_FILES
             if (folder.path / name).is_file()}
    builder, onnx_info = None, None
    for fold in folds:
        path = folder.checkpoint_path(fold, checkpoint)
        ckpt = load_checkpoint(path)
        builder = builder or ckpt["network_builder"]
        files[f"fold_{fold}/checkpoint_{checkpoint}.pth"] = _checkpoint_bytes(ckpt)
        if onnx:
            from mednext_fw.inference.backends.onnx_export import OPSET, onnx_bytes

            net = network_from_checkpoint(ckpt, str(path))
            shape = onnx_input_shape(folder, net)
            files[f"fold_{fold}/network.onnx"] = onnx_bytes(net, shape)
            onnx_info = onnx_info or {"opset": OPSET, "input_shape": shape, "files": {}}
            onnx_info["files"][str(fold)] = f"fold_{fold}/network.onnx"
    manifest = Manifest(
        dataset=folder.path.parent.name, trainer=folder.trainer_name, configuration=folder.config_name,
        checkpoint=checkpoint, folds=folds, task=folder.dataset.task, network_name=builder["name"],
        network_kwargs=dict(builder.get("kwargs", {})), package_version=__version__,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        network_plugin=plugin_ref("mednext_fw.networks", builder["name"]),
        trainer_plugin=plugin_ref("mednext_fw.trainers", folder.trainer_name), onnx=onnx_info)
    return manifest, files


def write_archive(manifest: Manifest, files: dict[str, bytes], output: str | Path) -> Path:
    """Hash ``files`` into ``manifest`` and write the zip atomically (a kill leaves no ``output``)."""
    import hashlib

    output = Path(output)
    manifest.files = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    with atomic_path(output) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr(MANIFEST, manifest.to_json())
            for name, data in sorted(files.items()):
                zf.writestr(f"{manifest.model_dir}/{name}", data)
    return output


def export_model(folder: str | Path | ModelFolder, output: str | Path, folds: Sequence[int] | None = None,
                 checkpoint: str = "final", onnx: bool = False) -> Manifest:
    """Write ``folder``'s model (chosen folds and checkpoint) to the zip ``output``; returns its manifest."""
    folder = folder if isinstance(folder, ModelFolder) else ModelFolder.open(folder)
    output = Path(output)
    if output.suffix.lower() != ".zip":
        raise DeploymentError(f"{output}: the exported model is a .zip file; name it <something>.zip")
    manifest, files = collect_files(folder, folds, checkpoint, onnx)
    write_archive(manifest, files, output)
    return manifest
