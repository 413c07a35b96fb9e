"""Run a trained network's forward on ONNX Runtime or OpenVINO behind an ``nn.Module`` face.

Everything around the forward (sliding window, Gaussian weighting, TTA, fold ensembling, export,
postprocessing, classification batching) stays the torch code it is: the predictor calls these
modules exactly like the network they replace. The ONNX graph is made lazily on the first call, from
the input it gets (so no caller has to say the patch size), via ``onnx_export.onnx_bytes``.

Threads follow ``torch.get_num_threads()`` when the runtime is built, so ``--threads`` and the
tests' single-thread setting apply to every backend alike. OpenVINO is pinned to fp32 inference
(its CPU plug-in may otherwise choose bf16 on CPUs that have it) and compiled per input shape
(static shapes are its fast path; sliding-window tiles all share one shape). Its converted and
compiled models are kept between runs (``ov_cache``): ~7-8 s of set-up per MedNeXt-S becomes ~1 s.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import sys
from typing import Callable

import numpy as np
import torch
from torch import nn

from mednext_fw.errors import UserError
from mednext_fw.inference.backends import ov_cache
from mednext_fw.inference.backends.onnx_export import INPUT, onnx_bytes
from mednext_fw.network_architectures.registry import input_channels

RUNTIMES = ("onnxruntime", "openvino")
_MODULE = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


class BackendUnavailableError(UserError, ValueError):
    """The requested runtime is not installed."""


def is_available(runtime: str) -> bool:
    return importlib.util.find_spec(_MODULE[runtime]) is not None


def require(runtime: str) -> None:
    """Refuse an unknown or uninstalled runtime with the install command."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime '{runtime}'; choose one of {RUNTIMES}")
    if not is_available(runtime):
        raise BackendUnavailableError(
            f"backend '{runtime}' is not installed: pip install '{_MODULE[runtime]}' (or mednext_fw[deploy])")


class RuntimeNetwork(nn.Module):
    """``forward(x)`` of ``net`` computed by ``runtime``; the torch module is kept only to export it."""

    def __init__(self, net: nn.Module, runtime: str, threads: int | None = None):
        super().__init__()
        require(runtime)
        self.runtime = runtime
        self.threads = int(threads or torch.get_num_threads())
        self._torch_net = [net.eval()]  # a list: not a submodule, so .to()/.state_dict() leave it alone
        self.in_channels = input_channels(net)
        self._onnx: bytes | None = None
        self._sessions: dict = {}

    def extra_repr(self) -> str:
        return f"runtime={self.runtime}, threads={self.threads}, network={type(self._torch_net[0]).__name__}"

    def _graph(self, shape) -> bytes:
        if self._onnx is None:
            self._onnx = onnx_bytes(self._torch_net[0], shape, fused_norm=self.runtime == "openvino")
        return self._onnx

    def _session(self, shape: tuple[int, ...]):
        key = shape if self.runtime == "openvino" else None  # ORT runs the dynamic graph as is
        if key not in self._sessions:
            if self.runtime == "openvino":
                self._sessions[key] = _openvino_model(self._openvino_graph(shape), shape, self.threads)
            else:
                self._sessions[key] = _ort_session(self._graph(shape), shape, self.threads)
        return self._sessions[key]

    def _openvino_graph(self, shape) -> Callable[[], object]:
        """Makes the ``ov.Model``: from the model cache (``ov_cache``), else exported and converted."""
        def convert():
            import openvino as ov

            return ov.convert_model(io.BytesIO(self._graph(shape)))

        return lambda: ov_cache.load_or_convert(self._torch_net[0], True, convert)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        run = self._session(tuple(array.shape))
        return torch.from_numpy(run(array)).to(x.device)


def _ort_session(graph: bytes, shape, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
    return lambda a: session.run(None, {INPUT: a})[0]


class _SignalStack(ctypes.Structure):  # Linux ``stack_t``
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]


@contextlib.contextmanager
def _keep_signal_stack():
    """Put the calling thread's alternate signal stack back after an OpenVINO call.

    OpenVINO's CPU plug-in points the thread's alternate signal stack at memory it owns and does not
    always restore it; once that memory is freed, the next signal handled on the alternate stack
    (Python installs its handlers with SA_ONSTACK: a Ctrl-C, or the trainer's SIGINT/SIGTERM catcher)
    crashes the process with SIGSEGV. Seen in one long process that predicted with OpenVINO, then trained.
    """
    libc = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
    saved = _SignalStack()
    if libc is None or libc.sigaltstack(None, ctypes.byref(saved)) != 0:
        yield
        return
    try:
        yield
    finally:
        libc.sigaltstack(ctypes.byref(saved), None)


def _openvino_model(make_model: Callable[[], object], shape, threads: int):
    import openvino as ov

    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    blobs = ov_cache.blob_dir()
    if blobs is not None:
        config["CACHE_DIR"] = str(blobs)
    with _keep_signal_stack():
        model = make_model()
        model.reshape({model.inputs[0]: ov.PartialShape(list(shape))})
        compiled = ov.Core().compile_model(model, "CPU", config)
        request = compiled.create_infer_request()
    out = compiled.outputs[0]

    def run(a: np.ndarray) -> np.ndarray:
        with _keep_signal_stack():
            request.infer({0: a})
            return np.array(request.get_tensor(out).data, copy=True)  # the request reuses its buffer

    return run
