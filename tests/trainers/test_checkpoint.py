import random

import numpy as np
import pytest
import torch

from mednext_fw.trainers import checkpoint as ck


def test_save_load_roundtrip_is_atomic(tmp_path):
    net = torch.nn.Linear(2, 3)
    path = tmp_path / "fold" / "checkpoint_latest.pth"
    ck.save_checkpoint({"network_state": net.state_dict(), "epoch": 4}, path)
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint_latest.pth"]
    assert ck.load_checkpoint(path)["epoch"] == 4
    path.write_bytes(b"garbage")
    with pytest.raises(ck.CheckpointError, match="not a readable checkpoint"):
        ck.load_checkpoint(path)
    with pytest.raises(ck.CheckpointError, match="not found"):
        ck.load_checkpoint(tmp_path / "missing.pth")


def test_rng_state_roundtrip():
    state = ck.rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    ck.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_prefixes_stripped_and_matching_load():
    src = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 4))
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    assert set(ck.strip_prefixes(state)) == set(src.state_dict())
    dst = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 5))
    report = ck.load_matching_weights(dst, state)
    assert sorted(report["loaded"]) == ["0.bias", "0.weight"]
    assert len(report["shape_mismatch"]) == 2
    assert torch.equal(dst[0].weight, src[0].weight)
