import os

import pytest

from mednext_fw.conversion.btcv import ORGANS, btcv_labels, btcv_plan
from mednext_fw.conversion.common import ConversionError
from tests.conversion.sources import copy_tree


def test_labels_are_btcv_order():
    labels = btcv_labels()
    assert labels["background"] == 0 and labels["spleen"] == 1 and labels["liver"] == 6
    assert labels["portal and splenic veins"] == 10 and labels["left adrenal gland"] == 13
    assert len(ORGANS) == 13 and list(labels.values()) == list(range(14))


def test_plan_from_rawdata_and_its_parent(btcv_src):
    for src in (btcv_src, btcv_src.parent):
        plan = btcv_plan(src)
        assert [c.case_id for c in plan.training] == ["img0001", "img0002", "img0003"]
        assert plan.training[1].label.name == "label0002.nii.gz"
        assert [c.case_id for c in plan.test] == ["img0061"]
        assert plan.dataset.channel_names == {"0": "CT"} and plan.dataset.num_training == 3
    assert btcv_plan(btcv_src, name="Abdomen").name == "Abdomen"


def test_errors(btcv_src, tmp_path):
    with pytest.raises(ConversionError, match="not a BTCV RawData folder"):
        btcv_plan(tmp_path)
    src = copy_tree(btcv_src, tmp_path / "RawData")
    os.remove(src / "Training" / "label" / "label0002.nii.gz")
    with pytest.raises(ConversionError, match=r"image\(s\) without a label .*img0002.nii.gz"):
        btcv_plan(src)
    os.remove(src / "Training" / "img" / "img0002.nii.gz")
    os.remove(src / "Training" / "img" / "img0003.nii.gz")
    with pytest.raises(ConversionError, match=r"label\(s\) without an image .*label0003.nii.gz"):
        btcv_plan(src)
    (src / "Training" / "img" / "scan9.nii.gz").write_bytes(b"x")
    with pytest.raises(ConversionError, match="scan9.nii.gz: unexpected file"):
        btcv_plan(src)
