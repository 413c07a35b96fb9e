import json

import numpy as np

from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.planners.fingerprint import extract_fingerprint
from mednext_fw.planners.planner import PlannerOptions, plan_experiment
from mednext_fw.preprocessing.folder import PreprocessedFolder
from mednext_fw.preprocessing.preprocessor import (copy_gt_segmentations, prepare_config_folder,
                                                   preprocess_configuration)
from tests.helpers_data import make_dataset


def test_parallel_resumable_and_stale_plans(tmp_path):
    raw = make_dataset(tmp_path / "raw", n_cases=3)
    ds = DatasetJson.load(raw / "dataset.json")
    fp = extract_fingerprint(raw, ds, 2)
    assert fp.shapes_after_crop[0] == [12, 14, 16] and fp.foreground_intensity_properties["0"].mean > 12
    plans = plan_experiment("Dataset005_Tiny", fp, ds, PlannerOptions(spacing=[2.0, 2.0, 2.0]))
    cfg = plans.configurations["3d_fullres"]
    out = PreprocessedFolder(tmp_path / "pre")
    assert preprocess_configuration(raw, out, plans, cfg, ds, 2)[:2] == (3, 0)
    folder = out.configuration(cfg.data_identifier)
    arr = folder.read_data("case0")
    assert arr.shape == (1, 6, 7, 8) and arr.dtype == np.float32
    assert folder.read_seg("case0").dtype == np.int16
    props = folder.read_properties("case0")
    assert props.class_locations["1"]
    assert props.shape_after_resampling == [6, 7, 8] and props.spacing_after_resampling == [2.0, 2.0, 2.0]
    assert not list(folder.path.glob(".*tmp*"))  # atomic writes leave no temporaries
    folder.properties_file("case1").unlink()  # as if interrupted before the case finished
    assert folder.incomplete_cases() == ["case1"]
    assert preprocess_configuration(raw, out, plans, cfg, ds, 1)[:2] == (1, 2)
    assert folder.cases() == ["case0", "case1", "case2"] and folder.incomplete_cases() == []
    assert prepare_config_folder(folder, plans, cfg, folder.cases()) is None  # same plans: kept
    cfg.spacing = [3.0, 3.0, 3.0]
    assert "plans changed" in prepare_config_folder(folder, plans, cfg, ["case0"])
    assert not list(folder.path.glob("*.npy"))
    assert folder.incomplete_cases() == ["case0"]  # expected, not yet written
    copy_gt_segmentations(raw, out, ds)
    assert sorted(p.name for p in out.gt_dir.iterdir()) == [f"case{i}.nii.gz" for i in range(3)]
    assert json.loads(folder.snapshot_file.read_text())["configuration"]["spacing"] == [3.0] * 3
