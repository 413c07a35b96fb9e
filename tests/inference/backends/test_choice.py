"""Choosing a backend: auto's order, CPU-only runtimes, a clear refusal when one is missing."""
import pytest
import torch

from mednext_fw.inference.backends import resolve_backend, runtimes, wrap_networks


def test_auto_is_torch_everywhere_even_with_runtimes_installed(monkeypatch):
    """Measured fastest end to end (benchmarks/predict_backends.py); the runtimes are asked for by name."""
    monkeypatch.setattr(runtimes, "is_available", lambda name: True)
    assert resolve_backend("auto", "cpu") == "torch"
    assert resolve_backend("auto", "cuda") == "torch"
    assert resolve_backend("onnxruntime", "cpu") == "onnxruntime"
    monkeypatch.setattr(runtimes, "is_available", lambda name: False)
    net = torch.nn.Conv3d(1, 2, 1)
    assert wrap_networks([net], "auto") == [net]
    with pytest.raises(runtimes.BackendUnavailableError, match="openvino.*not installed"):
        wrap_networks([net], "openvino")


def test_runtimes_are_cpu_only_and_names_are_checked():
    with pytest.raises(ValueError, match="--device cpu"):
        resolve_backend("onnxruntime", "cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("tensorrt", "cpu")
