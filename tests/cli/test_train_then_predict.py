"""A model trained by the real pipeline (plan -> train two folds) predicts through mednext_predict.

Outputs must sit exactly on each input's grid: a real volume, and a real volume made non-RAS and
anisotropic; with and without TTA; two folds ensembled.
"""
from __future__ import annotations

import shutil

import pytest

from mednext_fw.cli import plan_and_preprocess, predict, train
from tests.helpers_data import module_roots
from tests.inference.test_predictor import _non_ras_anisotropic, _same_geometry

TINY = ["--patch-size", "32", "32", "32", "--n-channels", "4", "--epochs", "1", "--iters-per-epoch", "2",
        "--val-iters", "1", "--num-workers", "0", "--no-final-val", "--no-progress", "--seed", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("trained")
    mp = pytest.MonkeyPatch()
    module_roots(root, shared_data, mp)
    assert plan_and_preprocess.main(["-d", "1", "-c", "3d_fullres", "--spacing", "6", "6", "6", "-np", "1"]) == 0
    for fold in ("0", "1"):
        assert train.main(["3d_fullres", fold, *TINY]) == 0
    yield root
    mp.undo()


@pytest.mark.slow
@pytest.mark.parametrize("tta", [True, False])
def test_two_fold_ensemble_writes_native_geometry(trained, shared_data, tmp_path, tta):
    images = tmp_path / "in"
    images.mkdir()
    real = shared_data / "Dataset001_BrainMask" / "imagesTr" / "mni152_3mm_0000.nii.gz"
    shutil.copy(real, images / "mni_0000.nii.gz")
    _non_ras_anisotropic(real, images / "odd_0000.nii.gz")
    args = ["-i", str(images), "-o", str(tmp_path / "out"), "-f", "0", "1", "-np", "0"]
    assert predict.main(args + ([] if tta else ["--disable-tta"])) == 0
    for case in ("mni", "odd"):
        seg = _same_geometry(tmp_path / "out" / f"{case}.nii.gz", images / f"{case}_0000.nii.gz")
        assert set(seg.ravel().tolist()) <= {0, 1}
