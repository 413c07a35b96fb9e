"""The nnU-Net sequence on real data with tiny budgets: plan -> train 2d and 3d_fullres on two folds
(validation probabilities kept by default) -> mednext_find_best_configuration -> its instructions,
run verbatim on a new image, give a label map on that image's grid."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk

from mednext_fw.cli import find_best_configuration, plan_and_preprocess, train
from mednext_fw.selection.instructions import commands
from tests.helpers_data import module_roots

TINY = ["--n-channels", "4", "--network-kwargs", '{"block_counts": [1, 1, 1, 1, 1, 1, 1, 1, 1]}', "--epochs", "1", "--iters-per-epoch", "2", "--val-iters", "1", "--num-workers", "0",
        "--no-progress", "--seed", "0", "--no-val-tta"]
PATCH = {"2d": ["--patch-size", "48", "48"], "3d_fullres": ["--patch-size", "32", "32", "32"]}

SMALL = ["mni152_3mm", "colin27_2mm"]
SPLITS = [{"train": ["colin27_1mm", "mni152_1mm", "mni152_2mm", SMALL[1]], "val": [SMALL[0]]},
          {"train": ["colin27_1mm", "mni152_1mm", "mni152_2mm", SMALL[0]], "val": [SMALL[1]]}]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def selected(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("selection")
    mp = pytest.MonkeyPatch()
    module_roots(root, shared_data, mp)
    assert plan_and_preprocess.main(["-d", "1", "-c", "2d", "3d_fullres", "--spacing", "6", "6", "6", "-np", "1"]) == 0
    # two folds validating the two smallest heads keep the 2d slice-by-slice validation short
    (root / "preprocessed" / "Dataset001_BrainMask" / "splits_final.json").write_text(json.dumps(SPLITS))
    for config in ("2d", "3d_fullres"):
        for fold in ("0", "1"):
            assert train.main([config, fold, *PATCH[config], *TINY]) == 0
    assert find_best_configuration.main(["-d", "1", "-f", "0", "1", "-np", "1"]) == 0
    yield root / "results" / "Dataset001_BrainMask"
    mp.undo()


def _run_verbatim(lines: list[str], cwd: Path) -> None:
    # one thread, as the in-process tests use: tiny networks on a shared 2-core machine run many
    # times slower when two threads contend
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")
    for line in lines:
        done = subprocess.run(line, shell=True, cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"


def _input_folder(cwd: Path, shared_data: Path) -> Path:
    """A real head cut to 16 axial slices (its geometry kept), so the 2d model's slice-by-slice
    prediction with test-time mirroring stays short."""
    (cwd / "INPUT_FOLDER").mkdir(parents=True)
    img = sitk.ReadImage(str(shared_data / "Dataset001_BrainMask" / "imagesTr" / "mni152_3mm_0000.nii.gz"))
    src = cwd / "INPUT_FOLDER" / "new_0000.nii.gz"
    sitk.WriteImage(img[:, :, 22:38], str(src))
    return src


def _same_grid(pred: Path, image: Path) -> None:
    a, b = sitk.ReadImage(str(pred)), sitk.ReadImage(str(image))
    assert a.GetSize() == b.GetSize() and a.GetSpacing() == b.GetSpacing()
    assert a.GetOrigin() == b.GetOrigin() and a.GetDirection() == b.GetDirection()


def test_validation_probabilities_are_kept_by_default(selected):
    for config in ("2d", "3d_fullres"):
        assert list((selected / f"MedNeXtTrainer__{config}" / "fold_0" / "validation").glob("*.npz"))


def test_files_are_written_and_cover_all_candidates(selected):
    info = json.loads((selected / "inference_information.json").read_text())
    names = {c["name"] for c in info["candidates"]}
    assert names == {"MedNeXtTrainer__2d", "MedNeXtTrainer__3d_fullres",
                     "ensemble___MedNeXtTrainer__2d___MedNeXtTrainer__3d_fullres"}
    assert len(info["cases"]) == 2 and info["best"]["name"] in names
    assert Path(info["best"]["postprocessing_file"]).is_file()


def test_instructions_run_verbatim(selected, shared_data, tmp_path):
    src = _input_folder(tmp_path, shared_data)
    text = (selected / "inference_instructions.txt").read_text()
    _run_verbatim([line for line in text.splitlines() if line and not line.startswith("#")], tmp_path)
    _same_grid(tmp_path / "OUTPUT_FOLDER_PP" / "new.nii.gz", src)


def test_ensemble_instructions_run_verbatim(selected, shared_data, tmp_path):
    """Whichever candidate won, the ensemble's commands work too (predict with probabilities ->
    mednext_ensemble -> mednext_apply_postprocessing)."""
    info = json.loads((selected / "inference_information.json").read_text())
    ensemble = next(c for c in info["candidates"] if len(c["members"]) == 2)
    info["best"] = {**ensemble, "postprocessing_file": info["best"]["postprocessing_file"]}
    src = _input_folder(tmp_path, shared_data)
    _run_verbatim(commands(info), tmp_path)
    _same_grid(tmp_path / "OUTPUT_FOLDER_ENSEMBLE" / "new.nii.gz", src)
    _same_grid(tmp_path / "OUTPUT_FOLDER_PP" / "new.nii.gz", src)
