"""An OpenVINO forward leaves the thread's alternate signal stack as it found it.

Without that, OpenVINO's CPU plug-in left the main thread's alternate signal stack pointing at memory
it later freed, and the next Python signal handler (installed with SA_ONSTACK) crashed the process:
the full test suite died with SIGSEGV in a trainer's Ctrl-C test after the OpenVINO prediction tests.
"""
import ctypes
import signal
import sys

import pytest
import torch

from mednext_fw.inference.backends.runtimes import RuntimeNetwork, _SignalStack
from mednext_fw.network_architectures.registry import build_network

pytest.importorskip("openvino")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack via the C library")


def _signal_stack() -> tuple[int, int]:
    stack = _SignalStack()
    assert ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack)) == 0
    return stack.sp or 0, stack.size


def test_signal_stack_kept_and_a_signal_after_openvino_is_handled():
    before = _signal_stack()
    net = build_network("xray_moe", in_channels=1, num_classes=3, width="tiny", num_experts=4, k=2, hidden=128,
                        moe_input_size=32)
    runtime = RuntimeNetwork(net, "openvino", threads=1)
    assert runtime(torch.randn(2, 1, 32, 32)).shape == (2, 3)
    assert _signal_stack() == before
    del runtime
    got = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert got == [signal.SIGINT]
