"""Choosing a backend: auto weighs OpenVINO's set-up against the forward time it saves; CPU-only
runtimes; a clear refusal when one is missing."""
import pytest
import torch

from mednext_fw.inference import backends
from mednext_fw.inference.backends import choose_auto, resolve_backend, runtimes, wrap_networks
from mednext_fw.network_architectures.registry import build_network


def test_auto_without_a_job_is_torch_and_named_runtimes_are_checked(monkeypatch):
    monkeypatch.setattr(runtimes, "is_available", lambda name: True)
    assert resolve_backend("auto", "cpu") == "torch"
    assert resolve_backend("auto", "cuda") == "torch"
    assert resolve_backend("onnxruntime", "cpu") == "onnxruntime"
    monkeypatch.setattr(runtimes, "is_available", lambda name: False)
    net = torch.nn.Conv3d(1, 2, 1)
    assert wrap_networks([net], "auto") == [net]
    with pytest.raises(runtimes.BackendUnavailableError, match="openvino.*not installed"):
        wrap_networks([net], "openvino")
    with pytest.raises(runtimes.BackendUnavailableError, match="onnxruntime.*not installed"):
        resolve_backend("onnxruntime", "cpu")  # what mednext_predict checks before any pass runs


def test_auto_picks_openvino_only_when_its_set_up_pays_off(monkeypatch):
    monkeypatch.setattr(runtimes, "is_available", lambda name: True)
    net = build_network("mednext", variant="S", in_channels=1, num_classes=2, n_channels=4)
    saved_per_pass = 1.0 - 1.0 / backends.OPENVINO_SPEEDUP
    passes_to_pay = backends.OPENVINO_SETUP_S / saved_per_pass  # seconds of torch forward per network
    assert choose_auto([net], "cpu", 12, 12.5) == "openvino"  # a CT volume's tiles at MedNeXt-S speed
    assert choose_auto([net, net], "cpu", 1, 1.1 * passes_to_pay) == "torch"  # two networks to set up
    assert choose_auto([net, net], "cpu", 2, 1.1 * passes_to_pay) == "openvino"
    assert choose_auto([net], "cpu", 1000, 0.01) == "torch"  # a tiny network: set-up would dominate
    monkeypatch.setattr(backends.ov_cache, "is_cached", lambda net: True)  # an earlier run cached it
    cached_to_pay = backends.OPENVINO_CACHED_SETUP_S / saved_per_pass
    assert choose_auto([net, net], "cpu", 1, 2.2 * cached_to_pay) == "openvino"
    assert choose_auto([net, net], "cpu", 1, 1.8 * cached_to_pay) == "torch"
    monkeypatch.setattr(backends.ov_cache, "is_cached", lambda net: False)
    assert choose_auto([net], "cpu", 96, None) == "torch"  # not timed: too small a job to judge
    assert choose_auto([net], "cuda", 96, 12.5) == "torch"
    assert choose_auto([torch.nn.Conv2d(1, 2, 1)], "cpu", 96, 12.5) == "torch"  # only MedNeXt was measured
    monkeypatch.setattr(runtimes, "is_available", lambda name: name != "openvino")
    assert choose_auto([net], "cpu", 96, 12.5) == "torch"


def test_runtimes_are_cpu_only_and_names_are_checked():
    with pytest.raises(ValueError, match="--device cpu"):
        resolve_backend("onnxruntime", "cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("tensorrt", "cpu")
