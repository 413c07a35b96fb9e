"""OpenVINO and ONNX Runtime agree with torch on models trained on real data: per-class Dice >= 0.999 and
max probability difference <= 1e-3, in 3D (sliding window + TTA), in 2D (slice-wise) and for a 2D
classifier; the CLI runs every backend and refuses an unavailable one cleanly."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from mednext_fw.cli import predict
from mednext_fw.inference import Predictor
from mednext_fw.inference.backends import wrap_networks
from mednext_fw.inference.classification import predict_to_csv
from mednext_fw.io.image_io import read_images

pytestmark = pytest.mark.slow  # trains three tiny models on real data (about a minute) and runs every runtime

RUNTIMES = [pytest.param(r, marks=pytest.mark.skipif(not __import__("importlib").util.find_spec(r),
                                                     reason=f"{r} not installed ([deploy] extra)"))
            for r in ("onnxruntime", "openvino")]


def _dice_per_class(a: np.ndarray, b: np.ndarray, classes) -> list[float]:
    out = []
    for c in classes:
        x, y = a == c, b == c
        denom = x.sum() + y.sum()
        out.append(1.0 if denom == 0 else 2 * (x & y).sum() / denom)
    return out


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("config,tta", [("3d_fullres", True), ("2d", False)])
def test_segmentation_backends_agree_with_torch(trained_models, shared_data, runtime, config, tta):
    data, props = read_images([shared_data / "Dataset001_BrainMask" / "imagesTr" / "mni152_3mm_0000.nii.gz"])
    torch_pred = Predictor.from_model_folder(trained_models[config], device="cpu", tta=tta)
    seg_ref, prob_ref = torch_pred.predict_array(data, props)
    other = Predictor.from_model_folder(trained_models[config], device="cpu", tta=tta)
    other.networks = wrap_networks(other.networks, runtime)
    assert type(other.networks[0]).__name__ == "RuntimeNetwork"
    seg, prob = other.predict_array(data, props)
    assert (seg_ref == 1).sum() > 100  # a trained model, not an empty prediction
    assert np.abs(prob - prob_ref).max() <= 1e-3
    assert min(_dice_per_class(seg, seg_ref, (0, 1))) >= 0.999


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_classifier_backends_agree_with_torch(trained_classifier, shared_data, tmp_path, runtime):
    images = shared_data / "Dataset101_MRIPlanes" / "imagesTr" / "axial"
    rows = {}
    for backend in ("torch", runtime):
        out = predict_to_csv(trained_classifier, [images], tmp_path / f"{backend}.csv", device="cpu",
                             backend=backend, progress=False)
        rows[backend] = list(csv.DictReader(out.open()))
    probs = {b: np.array([[float(v) for k, v in r.items() if k.startswith("prob_")] for r in rs])
             for b, rs in rows.items()}
    assert np.abs(probs["torch"] - probs[runtime]).max() <= 1e-3
    assert [r["class"] for r in rows["torch"]] == [r["class"] for r in rows[runtime]]


def test_cli_backends_write_the_same_labels(trained_models, shared_data, tmp_path):
    images = tmp_path / "in"
    images.mkdir()
    shutil.copy(shared_data / "Dataset001_BrainMask" / "imagesTr" / "colin27_2mm_0000.nii.gz", images)
    segs = {}
    for backend in ["torch", "auto"] + [r.values[0] for r in RUNTIMES if not r.marks[0].args[0]]:
        out = tmp_path / backend
        argv = ["-m", str(trained_models["3d_fullres"]), "-i", str(images), "-o", str(out), "--disable-tta",
                "-np", "0", "--backend", backend, "--device", "cpu"]
        assert predict.main(argv) == 0
        segs[backend] = read_images([out / "colin27_2mm.nii.gz"])[0]
    for backend, seg in segs.items():
        assert min(_dice_per_class(seg, segs["torch"], (0, 1))) >= 0.999, backend


def test_auto_moves_a_big_enough_job_to_openvino(trained_models, shared_data, tmp_path, monkeypatch, capsys):
    """With the set-up priced at nothing, auto must take OpenVINO for a timed MedNeXt job (the real
    threshold is tested in tests/inference/backends/test_choice.py); labels stay torch's."""
    pytest.importorskip("openvino")
    from mednext_fw.inference import backends

    images = tmp_path / "in"
    images.mkdir()
    shutil.copy(shared_data / "Dataset001_BrainMask" / "imagesTr" / "colin27_2mm_0000.nii.gz", images)
    monkeypatch.setattr(backends, "OPENVINO_SETUP_S", 0.0)
    monkeypatch.setattr(backends, "OPENVINO_CACHED_SETUP_S", 0.0)  # an earlier test may have cached it
    segs = {}
    for backend in ["torch", "auto"]:
        argv = ["-m", str(trained_models["3d_fullres"]), "-i", str(images), "-o", str(tmp_path / backend),
                "-np", "0", "--backend", backend, "--device", "cpu"]  # TTA on: enough passes to be timed
        assert predict.main(argv) == 0
        assert f"(forward on {'torch' if backend == 'torch' else 'openvino'})" in capsys.readouterr().out
        segs[backend] = read_images([tmp_path / backend / "colin27_2mm.nii.gz"])[0]
    assert min(_dice_per_class(segs["auto"], segs["torch"], (0, 1))) >= 0.999
