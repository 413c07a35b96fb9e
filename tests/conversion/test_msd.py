import pytest

from mednext_fw.conversion.common import ConversionError
from mednext_fw.conversion.msd import msd_plan, task_id_and_name, translate_dataset_json
from tests.conversion.sources import copy_tree


def test_translate_dataset_json(tmp_path):
    ch, labels = translate_dataset_json(
        {"modality": {"1": "T2", "0": "FLAIR"}, "labels": {"2": "tumour", "0": "bg", "1": "edema"}}, tmp_path)
    assert ch == {"0": "FLAIR", "1": "T2"}
    assert labels == {"background": 0, "edema": 1, "tumour": 2}
    with pytest.raises(ConversionError, match="'modality' keys must be 0..1"):
        translate_dataset_json({"modality": {"0": "a", "2": "b"}, "labels": {"0": "background"}}, tmp_path)
    with pytest.raises(ConversionError, match="used for values 1 and 2"):
        translate_dataset_json({"modality": {"0": "CT"}, "labels": {"0": "b", "1": "x", "2": "x"}}, tmp_path)
    with pytest.raises(ConversionError, match="must contain value 0"):
        translate_dataset_json({"modality": {"0": "CT"}, "labels": {"1": "x"}}, tmp_path)


def test_plan_skips_macos_forks(msd_src):
    assert task_id_and_name(msd_src) == (5, "Brain")
    plan = msd_plan(msd_src)
    assert plan.name == "Brain" and plan.preferred_id == 5
    assert [c.case_id for c in plan.training] == ["brain_001", "brain_002"]
    assert [c.case_id for c in plan.test] == ["brain_003"]
    assert plan.dataset.channel_names == {"0": "T1", "1": "T1half"}
    assert plan.dataset.to_dict()["licence"] == "CC-BY-SA"


def test_errors(msd_src, tmp_path):
    src = copy_tree(msd_src, tmp_path / "Brains")
    with pytest.raises(ConversionError, match="TaskXX_Name"):
        msd_plan(src)
    assert msd_plan(src, name="Other").name == "Other"
    (src / "labelsTr" / "brain_001.nii.gz").unlink()
    with pytest.raises(ConversionError, match=r"without a label .*brain_001.nii.gz"):
        msd_plan(src, name="Other")
    (src / "dataset.json").write_text("{not json")
    with pytest.raises(ConversionError, match="not valid JSON"):
        msd_plan(src, name="Other")
    (src / "dataset.json").unlink()
    with pytest.raises(ConversionError, match="dataset.json: not found"):
        msd_plan(src, name="Other")
