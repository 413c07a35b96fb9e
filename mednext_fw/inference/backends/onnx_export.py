"""Export a trained network to ONNX (one graph, dynamic batch and spatial sides, opset 17).

MedNeXt goes through its plain channels-first formulation (``plain.py``); other networks (the 2D
classifiers) are traced as they are. The TorchScript-based exporter is used on purpose: it needs no
extra package (the torch.export-based one needs onnxscript) and handles every op we use.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from mednext_fw.errors import UserError
from mednext_fw.inference.backends.plain import PlainMedNeXt, exportable

OPSET = 17
INPUT, OUTPUT = "input", "logits"


class ExportError(UserError, ValueError):
    """The network could not be exported (names the network and the exporter's reason)."""


def onnx_bytes(net: nn.Module, example_shape: Sequence[int], dynamic_spatial: bool = True,
               fused_norm: bool = False) -> bytes:
    """ONNX model of ``net``'s full-resolution output for inputs like ``example_shape`` ``(N, C, *S)``.

    Batch is always dynamic; spatial sides too when ``dynamic_spatial`` (sliding-window tiles are
    fixed-size, but a whole-image network may get any size). A MedNeXt is then traced on its smallest
    input, which gives the same graph at a fraction of the cost of tracing a full patch. ``fused_norm``:
    instance norms as one ``InstanceNormalization`` op (the graph OpenVINO runs fastest, ``plain._norm_pieces``).
    """
    module = exportable(net, fused_norm)
    if dynamic_spatial and isinstance(module, PlainMedNeXt):
        example_shape = module.smallest_input()
    example = torch.zeros(tuple(int(s) for s in example_shape))
    axes = {0: "batch"}
    if dynamic_spatial:
        axes.update({2 + i: f"s{i}" for i in range(len(example_shape) - 2)})
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy-exporter deprecation and tracer notes
            torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=OPSET,
                              input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: axes, OUTPUT: {0: "batch", **{k: v for k, v in axes.items() if k > 1}}})
    except Exception as exc:  # noqa: BLE001 - any exporter failure becomes one clear error
        raise ExportError(f"cannot export {type(net).__name__} to ONNX: {exc}") from exc
    return buf.getvalue()


def save_onnx(net: nn.Module, example_shape: Sequence[int], path: str | Path, dynamic_spatial: bool = True) -> Path:
    from mednext_fw.io.atomic import atomic_path

    path = Path(path)
    data = onnx_bytes(net, example_shape, dynamic_spatial)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return path
