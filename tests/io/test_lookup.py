import pytest

from mednext_fw.io.lookup import DatasetNotFoundError, find_dataset


@pytest.mark.parametrize("query", ["17", "017", "BTCV", "btcv", "Dataset017_BTCV", 17])
def test_resolves(roots, query):
    (roots["raw"] / "Dataset017_BTCV").mkdir()
    (roots["raw"] / "Dataset001_BrainMask").mkdir()
    assert find_dataset(query) == "Dataset017_BTCV"


def test_absent_and_ambiguous(roots):
    (roots["raw"] / "Dataset017_BTCV").mkdir()
    (roots["preprocessed"] / "Dataset017_Other").mkdir()
    with pytest.raises(DatasetNotFoundError, match="ambiguous.*Dataset017_BTCV.*Dataset017_Other"):
        find_dataset("17")
    with pytest.raises(DatasetNotFoundError, match="Existing datasets: Dataset017_BTCV"):
        find_dataset("42")
