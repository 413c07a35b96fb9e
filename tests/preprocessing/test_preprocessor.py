import json

import numpy as np

from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.planners.fingerprint import extract_fingerprint
from mednext_fw.planners.planner import PlannerOptions, plan_experiment
from mednext_fw.preprocessing.case_properties import CaseProperties
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
    out = tmp_path / "pre"
    prepare_config_folder(out / cfg.data_identifier, plans, cfg)
    assert preprocess_configuration(raw, out, plans, cfg, ds, 2) == (3, 0)
    folder = out / cfg.data_identifier
    arr = np.load(folder / "case0.npy", mmap_mode="r")
    assert arr.shape == (1, 6, 7, 8) and arr.dtype == np.float32
    assert np.load(folder / "case0_seg.npy").dtype == np.int16
    assert CaseProperties.load(folder / "case0.json").class_locations["1"]
    assert not list(folder.glob(".*tmp*"))  # atomic writes leave no temporaries
    (folder / "case1.json").unlink()  # as if interrupted before the case finished
    assert preprocess_configuration(raw, out, plans, cfg, ds, 1) == (1, 2)
    assert prepare_config_folder(folder, plans, cfg) is None  # same plans: kept
    cfg.spacing = [3.0, 3.0, 3.0]
    assert "plans changed" in prepare_config_folder(folder, plans, cfg)
    assert not list(folder.glob("*.npy"))
    copy_gt_segmentations(raw, out, ds)
    assert sorted(p.name for p in (out / "gt_segmentations").iterdir()) == [f"case{i}.nii.gz" for i in range(3)]
    assert json.loads((folder / "configuration.json").read_text())["configuration"]["spacing"] == [3.0] * 3
