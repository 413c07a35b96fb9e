"""Inference tests run many tiny forward passes; one thread avoids OpenMP oversubscription on the
shared 2-core machine (two threads were up to 100x slower per small op here)."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
