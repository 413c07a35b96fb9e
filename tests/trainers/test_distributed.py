import pytest
import torch

from mednext_fw.trainers.distributed import init_distributed, shard, split_batch_size


def test_shard_covers_every_item_once():
    items = [f"c{i}" for i in range(7)]
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == sorted(items)
    assert [len(p) for p in parts] == [3, 2, 2]


def test_batch_split():
    assert [split_batch_size(5, r, 2) for r in range(2)] == [3, 2]
    with pytest.raises(ValueError, match="smaller than the number of processes"):
        split_batch_size(1, 0, 2)


def test_single_process_context(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx, dev = init_distributed("cpu")
    assert dev == torch.device("cpu") and not ctx.enabled and ctx.is_main and ctx.all_gather_int(3) == [3]


def test_rank_oversample_keeps_the_global_ratio():
    from mednext_fw.trainers.distributed import rank_oversample

    assert rank_oversample(2, 1 / 3, 0, 1) == 0.5
    assert [rank_oversample(2, 1 / 3, r, 2) for r in range(2)] == [0.0, 1.0]
    assert sum(rank_oversample(6, 1 / 3, r, 3) * 2 for r in range(3)) == 2
