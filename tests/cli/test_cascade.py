"""The cascade end to end on real data with tiny budgets: --lowres forces 3d_lowres (and so the
cascade) into the plans; the cascade refuses to train until every 3d_lowres fold has validated its
cases, then trains on those cross-validation predictions, and mednext_predict -c 3d_cascade_fullres
runs both stages into the input's own geometry."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from mednext_fw.cli import plan_and_preprocess, predict, train
from mednext_fw.inference import Predictor
from mednext_fw.inference.cascade import CascadePredictor
from mednext_fw.planners.plans import Plans
from tests.helpers_data import module_roots
from tests.inference.test_predictor import _non_ras_anisotropic, _same_geometry

TINY = ["--patch-size", "32", "32", "32", "--n-channels", "4", "--network-kwargs",
        '{"block_counts": [1, 1, 1, 1, 1, 1, 1, 1, 1]}', "--epochs", "1", "--iters-per-epoch", "2", "--val-iters",
        "1", "--num-workers", "0", "--no-progress", "--seed", "0", "--no-val-tta", "--no-npz"]
# two folds that validate every case once: each case's lowres prediction comes from the fold that held it out
SPLITS = [{"train": ["colin27_1mm", "mni152_1mm", "mni152_2mm"], "val": ["colin27_2mm", "mni152_3mm"]},
          {"train": ["colin27_2mm", "mni152_3mm"], "val": ["colin27_1mm", "mni152_1mm", "mni152_2mm"]}]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cascade(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("cascade")
    mp = pytest.MonkeyPatch()
    module_roots(root, shared_data, mp)
    args = ["-d", "1", "-c", "3d_fullres", "3d_lowres", "--spacing", "6", "6", "6", "--lowres", "-np", "1"]
    assert plan_and_preprocess.main(args) == 0
    pre = root / "preprocessed" / "Dataset001_BrainMask"
    (pre / "splits_final.json").write_text(json.dumps(SPLITS))
    yield root
    mp.undo()


def test_lowres_forced_plans_the_cascade(cascade):
    plans = Plans.load(cascade / "preprocessed" / "Dataset001_BrainMask" / "plans.json")
    low, full, cas = (plans.configuration(c) for c in ("3d_lowres", "3d_fullres", "3d_cascade_fullres"))
    assert low.next_stage == "3d_cascade_fullres" and cas.previous_stage == "3d_lowres"
    assert cas.data_identifier == full.data_identifier and min(low.spacing) > max(full.spacing)


def test_cascade_trains_on_lowres_cv_and_predicts_through_both_stages(cascade, shared_data, tmp_path, capsys):
    results = cascade / "results" / "Dataset001_BrainMask"
    assert train.main(["3d_cascade_fullres", "0", *TINY]) == 1
    err = capsys.readouterr().err
    assert "fold_0" in err and "fold_1" in err and "3d_lowres" in err
    assert not (results / "MedNeXtTrainer__3d_cascade_fullres").exists()  # nothing half-written

    assert train.main(["3d_lowres", "0", *TINY]) == 0
    assert train.main(["3d_cascade_fullres", "0", *TINY]) == 1
    err = capsys.readouterr().err
    assert "fold_1" in err and "fold_0 " not in err and "mni152_1mm" in err

    assert train.main(["3d_lowres", "1", *TINY]) == 0
    assert train.main(["3d_cascade_fullres", "0", *TINY]) == 0
    model = results / "MedNeXtTrainer__3d_cascade_fullres"
    assert sorted(p.stem for p in (model / "previous_stage").glob("*.npy")) == sorted(
        SPLITS[0]["train"] + SPLITS[0]["val"])
    assert (model / "fold_0" / "validation" / "summary.json").is_file()

    predictor = Predictor.from_model_folder(model, [0], device="cpu")
    assert isinstance(predictor, CascadePredictor) and len(predictor.previous.networks) == 1
    ckpt = torch.load(model / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert ckpt["network_builder"]["kwargs"]["in_channels"] == 2  # the image + one brain channel from 3d_lowres

    images = tmp_path / "in"
    images.mkdir()
    real = shared_data / "Dataset001_BrainMask" / "imagesTr" / "mni152_3mm_0000.nii.gz"
    shutil.copy(real, images / "mni_0000.nii.gz")
    _non_ras_anisotropic(real, images / "odd_0000.nii.gz")
    out = tmp_path / "out"
    assert predict.main(["-i", str(images), "-o", str(out), "-c", "3d_cascade_fullres", "-f", "0", "-np", "0",
                         "--disable-tta"]) == 0
    for case in ("mni", "odd"):
        seg = _same_geometry(out / f"{case}.nii.gz", images / f"{case}_0000.nii.gz")
        assert set(seg.ravel().tolist()) <= {0, 1}
