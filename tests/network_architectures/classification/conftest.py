import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """These networks are tiny: on a loaded 2-core machine every 2-thread parallel region waits
    for a descheduled worker (measured: 7.5 s instead of 0.35 s for the prune test)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
