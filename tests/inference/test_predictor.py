"""Predictions land exactly on the input's grid (read back from the written files)."""
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from mednext_fw.inference import Predictor
from mednext_fw.inference.model_folder import ModelFolder
from mednext_fw.inference.sliding_window import sliding_window_predict
from mednext_fw.io import read_images
from mednext_fw.io.dataset_json import DatasetJson
from tests.inference.model_factory import THRESHOLD_NET, brain_plans, make_model_folder, tiny_network

COARSE = (8.0, 8.0, 8.0)  # one 32^3 tile per case keeps the tiny MedNeXt cheap


def _same_geometry(out: Path, ref: Path):
    a, b = sitk.ReadImage(str(out)), sitk.ReadImage(str(ref))
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
    return sitk.GetArrayFromImage(a)


def _cases(shared_data, names=("mni152_3mm", "colin27_2mm")):
    d = shared_data / "Dataset001_BrainMask" / "imagesTr"
    return {n: [d / f"{n}_0000.nii.gz"] for n in names}


@pytest.mark.parametrize("tta,folds", [(False, (0,)), (True, (0,)), (False, (0, 1))])
def test_geometry_tta_and_fold_ensemble(tmp_path, shared_data, tta, folds):
    mf = make_model_folder(tmp_path / "res", shared_data / "Dataset001_BrainMask", folds=(0, 1),
                           plans=brain_plans(spacing=COARSE))
    pred = Predictor.from_model_folder(mf, folds=folds, device="cpu", tta=tta)
    assert len(pred.networks) == len(folds) and all(not n.deep_supervision for n in pred.networks)
    cases = _cases(shared_data)
    outs = pred.predict_files(cases, tmp_path / "out", save_probabilities=True, num_export_workers=0)
    for out, (case, files) in zip(outs, cases.items()):
        seg = _same_geometry(out, files[0])
        probs = np.load(tmp_path / "out" / f"{case}.npz")["probabilities"]
        assert probs.shape == (2, *seg.shape)
        np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
        np.testing.assert_array_equal(seg, probs.argmax(0))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"{c}.nii.gz" for c in cases] + [f"{c}.npz" for c in cases] + ["dataset.json"])  # for mednext_ensemble


def test_fold_ensemble_averages_logits_in_one_accumulator(tmp_path, shared_data):
    mf = make_model_folder(tmp_path / "res", shared_data / "Dataset001_BrainMask", folds=(0, 1),
                           plans=brain_plans(spacing=COARSE))
    data = np.random.default_rng(0).standard_normal((1, 20, 24, 20)).astype(np.float32)
    both = Predictor.from_model_folder(mf, folds=(0, 1), device="cpu", tta=False)
    logits = [sliding_window_predict(net.eval(), torch.from_numpy(data), 2, both.settings) for net in both.networks]
    expected = torch.softmax((logits[0] + logits[1]) / 2, 0).numpy()
    np.testing.assert_allclose(both.predict_probabilities(data), expected, atol=1e-6)
    assert (logits[0] - logits[1]).abs().max() > 1e-3  # the folds differ, so the mean is a real test


def _non_ras_anisotropic(src: Path, dst: Path) -> Path:
    """Permuted axes, a flipped axis and 5 mm spacing along one in-plane-sized axis."""
    img = sitk.ReadImage(str(src))
    img = sitk.Flip(sitk.PermuteAxes(img, [2, 0, 1]), [False, True, False])
    spacing = list(img.GetSpacing())
    spacing[0] = 5.0
    spacing[1] = 1.5
    size = [int(round(sz * sp / nsp)) for sz, sp, nsp in zip(img.GetSize(), img.GetSpacing(), spacing)]
    img = sitk.Resample(img, size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(), spacing,
                        img.GetDirection(), 0.0, img.GetPixelID())
    sitk.WriteImage(img, str(dst))
    return dst


def test_non_ras_anisotropic_input_is_aligned(tmp_path, shared_data):
    src = _non_ras_anisotropic(shared_data / "Dataset001_BrainMask" / "imagesTr" / "mni152_3mm_0000.nii.gz",
                               tmp_path / "odd_0000.nii.gz")
    img = sitk.ReadImage(str(src))
    assert img.GetDirection() != (1, 0, 0, 0, 1, 0, 0, 0, 1) and max(img.GetSpacing()) / min(img.GetSpacing()) > 3
    # the 5 mm axis is array axis 2; the plans move it first, as a planner would
    plans = brain_plans(spacing=(5.0, 4.0, 4.0), patch=(16, 32, 32), transpose=(2, 0, 1))
    mf = make_model_folder(tmp_path / "res", shared_data / "Dataset001_BrainMask", plans=plans, network=THRESHOLD_NET)
    pred = Predictor.from_model_folder(mf, device="cpu", tta=True)
    out = pred.predict_files({"odd": [src]}, tmp_path / "out", num_export_workers=0)[0]
    seg = _same_geometry(out, src)
    # The threshold network marks voxels above the mean of the nonzero box; compare in native space.
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    nz = np.argwhere(arr != 0)
    box = tuple(slice(a, b + 1) for a, b in zip(nz.min(0), nz.max(0)))
    expected = np.zeros(arr.shape, bool)
    expected[box] = arr[box] > arr[box].mean()
    dice = 2 * np.sum(expected & (seg == 1)) / (expected.sum() + (seg == 1).sum())
    assert dice > 0.9, dice
    assert np.mean(np.flip(expected, 1) == (seg == 1)) < np.mean(expected == (seg == 1))


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path, shared_data, monkeypatch):
    mf = make_model_folder(tmp_path / "res", shared_data / "Dataset001_BrainMask", plans=brain_plans(spacing=COARSE))
    pred = Predictor.from_model_folder(mf, device="cpu", tta=False)
    cases = _cases(shared_data)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "mni152_3mm.nii.gz").write_bytes(b"finished earlier")
    seen = []
    real = Predictor.predict_probabilities
    monkeypatch.setattr(Predictor, "predict_probabilities", lambda self, d: seen.append(d.shape) or real(self, d))
    pred.predict_files(cases, out_dir, num_export_workers=0)
    assert len(seen) == 1 and (out_dir / "mni152_3mm.nii.gz").read_bytes() == b"finished earlier"
    pred.predict_files(cases, out_dir, num_export_workers=0)
    assert len(seen) == 1
    pred.predict_files(cases, out_dir, num_export_workers=0, save_probabilities=True)  # npz missing: redo
    assert len(seen) == 3
    pred.predict_files(cases, out_dir, overwrite=True, num_export_workers=0)
    assert len(seen) == 5 and (out_dir / "mni152_3mm.nii.gz").read_bytes() != b"finished earlier"


def test_failed_export_leaves_nothing_behind(tmp_path, shared_data, monkeypatch):
    import mednext_fw.io.image_io as image_io

    mf = make_model_folder(tmp_path / "res", shared_data / "Dataset001_BrainMask", plans=brain_plans(spacing=COARSE))
    pred = Predictor.from_model_folder(mf, device="cpu", tta=False)

    def half_write(img, path, useCompression=True):
        Path(path).write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(image_io.sitk, "WriteImage", half_write)
    with pytest.raises(RuntimeError, match="disk full"):
        pred.predict_files(_cases(shared_data, ["mni152_3mm"]), tmp_path / "out", save_probabilities=True,
                           num_export_workers=0)
    # complete probabilities (and the folder's dataset.json); the label not written
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dataset.json", "mni152_3mm.npz"]


def test_in_memory_predictor_restores_training_state(tmp_path, shared_data):
    """The trainer's final validation: its own network, deep supervision and train mode restored."""
    net, _ = tiny_network(0)
    net.train()
    plans = brain_plans(spacing=COARSE)
    dataset = DatasetJson.load(shared_data / "Dataset001_BrainMask" / "dataset.json")
    pred = Predictor(net, plans, "3d_fullres", dataset, device="cpu", tta=False)
    data, props = pred.preprocess(*read_images(_cases(shared_data, ["mni152_3mm"])["mni152_3mm"]))
    out = pred.predict_preprocessed_to_file(data, props, tmp_path / "val" / "mni152_3mm.nii.gz")
    assert net.training and net.deep_supervision is True
    _same_geometry(out, _cases(shared_data, ["mni152_3mm"])["mni152_3mm"][0])
    seg = pred.predict_preprocessed(data, props)
    assert seg.shape == (61, 73, 61)


def test_predict_array_returns_native_label_map_and_probabilities(tmp_path, shared_data):
    mf = make_model_folder(tmp_path / "res", shared_data / "Dataset001_BrainMask", plans=brain_plans(spacing=COARSE),
                           network=THRESHOLD_NET)
    pred = Predictor.from_model_folder(ModelFolder.open(mf), device="cpu", tta=False)
    data, props = read_images(_cases(shared_data, ["colin27_2mm"])["colin27_2mm"])
    seg, probs = pred.predict_array(data, props)
    assert seg.shape == data.shape[1:] and probs.shape == (2, *data.shape[1:])
    np.testing.assert_array_equal(seg, probs.argmax(0))
    assert 0.05 < (seg == 1).mean() < 0.6
    assert torch.get_num_threads() == 1


def test_non_finite_data_is_refused_naming_the_files():
    from mednext_fw.inference.inputs import InputFileError, require_finite

    require_finite(np.zeros((1, 2, 3, 4), np.float32), [Path("a.nrrd")])
    require_finite(np.zeros((1, 2, 3, 4), np.int16), [Path("a.nrrd")])
    data = np.zeros((2, 2, 3, 4), np.float32)
    data[1, 0, 0, :2] = [np.inf, np.nan]
    with pytest.raises(InputFileError, match=r"c_0000.nrrd, c_0001.nrrd: contains NaN or Inf values \(2 voxel"):
        require_finite(data, [Path("c_0000.nrrd"), Path("c_0001.nrrd")])
