import pytest

from mednext_fw.io.dataset_json import DatasetJson, DatasetJsonError

BASE = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1}, "numTraining": 3,
        "file_ending": ".nii.gz"}


def test_round_trip(tmp_path):
    ds = DatasetJson.from_dict({**BASE, "custom": 1})
    ds.save(tmp_path / "d.json")
    back = DatasetJson.load(tmp_path / "d.json")
    assert back == ds and back.extra == {"custom": 1} and back.foreground_labels == [1]


@pytest.mark.parametrize("change, match", [
    ({"labels": {"liver": 1}}, "background"),
    ({"file_ending": "nii"}, "file_ending"),
    ({"labels": {"background": 0, "a": 1, "whole": [1, 2]}}, "regions_class_order"),
    ({"labels": {"background": 0, "a": 1, "ignore": 5}}, "ignore"),
    ({"numTraining": "3"}, r"'numTraining' must be .* got \"3\""),  # a string, as some converters write it
    ({"numTraining": 3.0}, r"'numTraining' must be .* got 3.0"),
    ({"numTraining": -1}, "'numTraining' must be"),
    ({"numTraining": True}, "'numTraining' must be"),
    ({"numTraining": None}, "'numTraining' must be .* got null"),
])
def test_schema_errors(change, match):
    with pytest.raises(DatasetJsonError, match=match):
        DatasetJson.from_dict({**BASE, **change})


def test_missing_key():
    d = dict(BASE)
    del d["numTraining"]
    with pytest.raises(DatasetJsonError, match="numTraining"):
        DatasetJson.from_dict(d)
