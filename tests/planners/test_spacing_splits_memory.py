import json

import pytest

from mednext_fw.network_architectures.mednext.configs import MEDNEXT_VARIANTS
from mednext_fw.planners.memory_model import DEVICE_OVERHEAD_BYTES, max_batch_size, training_memory_bytes
from mednext_fw.planners.spacing import median_shape_at, target_spacing, transpose_for
from mednext_fw.planners.splits import SplitsError, ensure_splits, fold_cases, make_splits, read_splits


def test_target_spacing_rules():
    assert target_spacing([[1, 1, 1], [2, 2, 2], [3, 3, 3]], [[100] * 3] * 3) == [2, 2, 2]
    # coarse but many slices: median kept
    assert target_spacing([[5, 1, 1], [4, 1, 1], [6, 1, 1]], [[200, 100, 100]] * 3) == [5, 1, 1]
    # coarse and few slices: 10th percentile, but never finer than the other axes
    assert target_spacing([[5, 1, 1], [4, 1, 1], [6, 1, 1]], [[20, 100, 100]] * 3) == pytest.approx([4.2, 1, 1])
    assert transpose_for([1, 1, 5]) == ([2, 0, 1], [1, 2, 0])
    assert median_shape_at([[1, 1, 1], [2, 2, 2], [3, 3, 3]], [[10, 10, 10]] * 3, [2, 2, 2]) == [10, 10, 10]


def test_splits(tmp_path):
    ids = [f"c{i}" for i in range(12)]
    s = make_splits(ids[::-1])
    assert len(s) == 5 and sorted(sum((f["val"] for f in s), [])) == sorted(ids)
    assert [len(f["val"]) for f in s] == [3, 3, 2, 2, 2]
    assert s == make_splits(ids)  # sorted ids, fixed seed
    path = tmp_path / "splits_final.json"
    _, msg = ensure_splits(path, ids)
    assert "5-fold" in msg and json.loads(path.read_text()) == s
    user = [{"train": ids[:6], "val": ids[6:]}]
    path.write_text(json.dumps(user))
    assert ensure_splits(path, ids)[0] == user  # the user's file is respected
    path.write_text(json.dumps([{"train": ["nope"], "val": []}]))
    with pytest.raises(SplitsError, match="unknown case"):
        ensure_splits(path, ids)


def test_few_cases(tmp_path):
    splits, msg = ensure_splits(tmp_path / "s.json", ["a", "b", "c"])
    assert len(splits) == 3 and "3 folds instead of 5" in msg
    with pytest.raises(SplitsError, match="at least 2"):
        make_splits(["a"])


def test_memory_model_monotone():
    p = [64, 64, 64]
    mem = {v: training_memory_bytes(v, p, 2, checkpointing=False) for v in MEDNEXT_VARIANTS}
    assert mem["S"] < mem["B"] < mem["M"] < mem["L"]
    ck = training_memory_bytes("L", p, 2, checkpointing=True)
    assert ck < mem["L"]
    assert training_memory_bytes("S", [128] * 3, 2) > training_memory_bytes("S", [64] * 3, 2)
    # the fixed part: the device context plus 16 bytes per (exact) parameter of S-k3 with 2 classes
    fixed = training_memory_bytes("S", p, 0) - DEVICE_OVERHEAD_BYTES
    assert fixed == 16 * 5_552_842
    assert max_batch_size("S", p, 1e9) == 0 and max_batch_size("S", p, 40 * 2 ** 30) >= 2
    # a planned topology is asked for its own estimate: keeping the slice axis costs more per voxel
    aniso = dict(strides=[[1, 2, 2]] * 2 + [[2, 2, 2]] * 2, kernel_sizes=[[1, 3, 3]] * 2 + [[3, 3, 3]] * 3)
    assert training_memory_bytes("S", [16, 128, 128], 2, **aniso) > training_memory_bytes("S", [64] * 3, 2)


def test_fold_selection_and_errors(tmp_path):
    splits = make_splits(["a", "b", "c"])
    assert len(splits) == 3  # fewer cases than folds: one case per fold
    train, val = fold_cases(splits, 0, ["a", "b", "c"])
    assert len(train) == 2 and len(val) == 1
    assert fold_cases(None, "all", ["b", "a"]) == (["a", "b"], ["a", "b"])  # fold all needs no split
    with pytest.raises(SplitsError, match="fold 4 does not exist"):
        fold_cases(splits, 4, ["a", "b", "c"])
    with pytest.raises(SplitsError, match="without preprocessed data"):
        fold_cases(splits, 0, ["a"])
    with pytest.raises(SplitsError, match="not found; run mednext_plan_and_preprocess"):
        read_splits(tmp_path / "splits_final.json")
    (tmp_path / "bad.json").write_text('[{"train": "a", "val": []}]')
    with pytest.raises(SplitsError, match="fold 0 must be"):
        read_splits(tmp_path / "bad.json")
