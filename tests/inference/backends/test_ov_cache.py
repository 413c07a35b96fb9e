"""OpenVINO's model cache: a second run skips export and conversion and computes the same; the key
follows weights and structure; 'off' writes nothing; a run killed while saving leaves nothing read."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from mednext_fw.inference.backends import ov_cache
from mednext_fw.inference.backends.runtimes import RuntimeNetwork
from mednext_fw.network_architectures.registry import build_network

pytest.importorskip("openvino")


def _net(seed: int = 0):
    torch.manual_seed(seed)
    return build_network("mednext", variant="S", in_channels=1, num_classes=2, n_channels=4,
                         block_counts=[1] * 9, deep_supervision=False).eval()


def _entries(root):
    return sorted(p.name for p in (root / "openvino").iterdir() if p.name != "blobs")


def test_second_run_reads_the_cache_and_computes_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDNEXT_cache", str(tmp_path))
    net, x = _net(), torch.randn(1, 1, 32, 32, 32)
    first = RuntimeNetwork(net, "openvino")(x)
    assert _entries(tmp_path) == [ov_cache.model_key(net, True)]
    assert (tmp_path / "openvino" / _entries(tmp_path)[0] / "model.bin").stat().st_size > 4 * 1000  # fp32 weights

    def no_export(*args, **kwargs):
        raise AssertionError("exported again despite the cache")

    monkeypatch.setattr("mednext_fw.inference.backends.runtimes.onnx_bytes", no_export)
    again = RuntimeNetwork(net, "openvino")(x)
    assert np.array_equal(first.numpy(), again.numpy())


def test_key_follows_weights_and_structure():
    net = _net()
    key = ov_cache.model_key(net, True)
    assert ov_cache.model_key(_net(0), True) == key
    assert ov_cache.model_key(net, False) != key
    assert ov_cache.model_key(_net(1), True) != key  # other weights
    net.up[0].dw.padding = (0, 0, 0)  # same parameters, another graph
    assert ov_cache.model_key(net, True) != key


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDNEXT_cache", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ov_cache.cache_root() is None and ov_cache.blob_dir() is None
    RuntimeNetwork(_net(), "openvino")(torch.randn(1, 1, 16, 16, 16))
    assert not any(tmp_path.iterdir())


def test_a_run_killed_while_saving_leaves_nothing_a_later_run_reads(tmp_path, monkeypatch):
    """A real SIGKILL in the middle of writing the entry: only a temporary is left, which the next
    run ignores and sweeps, then it converts and saves a whole entry."""
    script = textwrap.dedent(f"""
        import os, signal, sys, torch
        import openvino as ov
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_ov_cache import _net
        from mednext_fw.inference.backends.runtimes import RuntimeNetwork
        real = ov.save_model
        def save_then_die(model, path, **kw):
            real(model, path, **kw)
            with open(path, "r+b") as f:
                f.truncate(100)  # a half-written model ...
            os.kill(os.getpid(), signal.SIGKILL)  # ... and the process dies before the rename
        ov.save_model = save_then_die
        RuntimeNetwork(_net(), "openvino")(torch.randn(1, 1, 16, 16, 16))
    """)
    env = {**os.environ, "MEDNEXT_cache": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    left = _entries(tmp_path)
    assert len(left) == 1 and left[0].startswith(".")  # a temporary, never an entry
    monkeypatch.setenv("MEDNEXT_cache", str(tmp_path))
    out = RuntimeNetwork(_net(), "openvino")(torch.randn(1, 1, 16, 16, 16))
    assert torch.isfinite(out).all()
    assert _entries(tmp_path) == [ov_cache.model_key(_net(), True)]


def test_a_damaged_entry_is_converted_again(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDNEXT_cache", str(tmp_path))
    net, x = _net(), torch.randn(1, 1, 16, 16, 16)
    ref = RuntimeNetwork(net, "openvino")(x)
    (tmp_path / "openvino" / ov_cache.model_key(net, True) / "model.xml").write_text("<net>not a model")
    assert np.array_equal(RuntimeNetwork(net, "openvino")(x).numpy(), ref.numpy())
