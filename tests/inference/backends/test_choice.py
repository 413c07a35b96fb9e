"""Choosing a backend: auto's order, CPU-only runtimes, a clear refusal when one is missing."""
import pytest
import torch

from mednext_fw.inference.backends import resolve_backend, runtimes, wrap_networks


def test_auto_prefers_onnxruntime_then_openvino_on_cpu_and_torch_elsewhere(monkeypatch):
    monkeypatch.setattr(runtimes, "is_available", lambda name: True)
    assert resolve_backend("auto", "cpu") == "onnxruntime"
    assert resolve_backend("auto", "cuda") == "torch"
    monkeypatch.setattr(runtimes, "is_available", lambda name: name == "openvino")
    assert resolve_backend("auto", "cpu") == "openvino"
    monkeypatch.setattr(runtimes, "is_available", lambda name: False)
    assert resolve_backend("auto", "cpu") == "torch"
    net = torch.nn.Conv3d(1, 2, 1)
    assert wrap_networks([net], "auto") == [net]
    with pytest.raises(runtimes.BackendUnavailableError, match="openvino.*not installed"):
        wrap_networks([net], "openvino")


def test_runtimes_are_cpu_only_and_names_are_checked():
    with pytest.raises(ValueError, match="--device cpu"):
        resolve_backend("onnxruntime", "cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("tensorrt", "cpu")
