import pytest

from mednext_fw.conversion.common import ConversionError
from mednext_fw.conversion.target import choose_folder


def _mk(root, *names):
    for n in names:
        (root / n).mkdir(parents=True)


def test_next_free_id_and_same_name_reuse(roots):
    raw = roots["raw"]
    assert choose_folder("BTCV", raw) == "Dataset001_BTCV"
    _mk(raw, "Dataset001_Brain", "Dataset004_Liver")
    _mk(roots["results"], "Dataset007_Old")  # IDs in the other roots count too
    assert choose_folder("BTCV", raw) == "Dataset008_BTCV"
    assert choose_folder("liver", raw) == "Dataset004_liver"  # a re-run finds its own ID
    assert choose_folder("Spleen", raw, preferred_id=9) == "Dataset009_Spleen"
    assert choose_folder("Spleen", raw, preferred_id=4) == "Dataset008_Spleen"  # preferred ID taken


def test_explicit_id_rules(roots):
    raw = roots["raw"]
    _mk(raw, "Dataset003_Brain")
    assert choose_folder("BTCV", raw, dataset_id=17) == "Dataset017_BTCV"
    assert choose_folder("Brain", raw, dataset_id=3) == "Dataset003_Brain"
    with pytest.raises(ConversionError, match="ID 3 is already used by Dataset003_Brain"):
        choose_folder("BTCV", raw, dataset_id=3)
    with pytest.raises(ConversionError, match="ambiguous"):
        choose_folder("Brain", raw, dataset_id=5)
    with pytest.raises(ConversionError, match="between 1 and 999"):
        choose_folder("BTCV", raw, dataset_id=1000)


def test_ids_run_out_to_lowest_free(roots):
    raw = roots["raw"]
    _mk(raw, "Dataset999_Last", "Dataset001_First")
    assert choose_folder("New", raw) == "Dataset002_New"
