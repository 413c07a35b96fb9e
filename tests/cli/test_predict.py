"""``mednext_predict``: the happy path from -i/-o alone, resumption, postprocessing, every refusal."""
import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from mednext_fw.cli.predict import main
from mednext_fw.inference import Predictor
from tests.inference.model_factory import brain_plans, make_model_folder

COARSE = brain_plans(spacing=(8.0, 8.0, 8.0))


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def model(roots, shared_data):
    return make_model_folder(roots["results"], shared_data / "Dataset001_BrainMask", plans=COARSE)


@pytest.fixture
def inputs(tmp_path, shared_data):
    d = tmp_path / "in"
    d.mkdir()
    src = shared_data / "Dataset001_BrainMask" / "imagesTr"
    shutil.copy(src / "mni152_3mm_0000.nii.gz", d / "mni152_3mm_0000.nii.gz")
    shutil.copy(src / "colin27_2mm_0000.nii.gz", d / "colin27_2mm.nii.gz")  # plain name: single channel
    return d


def test_input_and_output_suffice_and_rerun_resumes(model, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["-i", str(inputs), "-o", str(out), "--disable-tta", "-np", "1", "--save-probabilities"]) == 0
    assert "mednext_predict: estimated 2 case(s):" in capsys.readouterr().out  # said before predicting
    for case, src in (("mni152_3mm", "mni152_3mm_0000"), ("colin27_2mm", "colin27_2mm")):
        a, b = sitk.ReadImage(str(out / f"{case}.nii.gz")), sitk.ReadImage(str(inputs / f"{src}.nii.gz"))
        assert a.GetSize() == b.GetSize() and a.GetSpacing() == b.GetSpacing()
        assert a.GetOrigin() == b.GetOrigin() and a.GetDirection() == b.GetDirection()
        assert (out / f"{case}.npz").is_file()
    stamp = (out / "mni152_3mm.nii.gz").stat().st_mtime_ns
    assert main(["-i", str(inputs), "-o", str(out), "--disable-tta", "-np", "0"]) == 0
    assert (out / "mni152_3mm.nii.gz").stat().st_mtime_ns == stamp
    assert "estimated" not in capsys.readouterr().out  # nothing left to predict
    assert main(["-i", str(inputs), "-o", str(out), "--disable-tta", "-np", "0", "--overwrite",
                 "-d", "BrainMask", "-c", "3d_fullres", "-tr", "MedNeXtTrainer", "-f", "0", "-chk", "final"]) == 0
    assert (out / "mni152_3mm.nii.gz").stat().st_mtime_ns != stamp
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def _fails(argv, capsys, *needles):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err
    return err


def _two_channel_model(roots, shared_data, tmp_path):
    ds = tmp_path / "Dataset002_Two"
    ds.mkdir()
    d = json.loads((shared_data / "Dataset001_BrainMask" / "dataset.json").read_text())
    d["channel_names"] = {"0": "T1", "1": "T2"}
    (ds / "dataset.json").write_text(json.dumps(d))
    return make_model_folder(roots["results"], ds, plans=COARSE)


def test_input_refusals_name_the_file_and_write_nothing(roots, shared_data, model, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["-o", str(out), "--disable-tta", "-np", "0"]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken_0000.nii.gz").write_bytes(b"not an image")
    _fails(["-i", str(bad)] + base, capsys, "broken_0000.nii.gz", "cannot be read")
    # one bad case among good ones: checked before anything is predicted
    shutil.copy(bad / "broken_0000.nii.gz", inputs / "zz_0000.nii.gz")
    _fails(["-i", str(inputs)] + base, capsys, "zz_0000.nii.gz")
    assert not out.exists() or not any(out.iterdir())
    (inputs / "zz_0000.nii.gz").unlink()

    cut = tmp_path / "cut"
    cut.mkdir()
    whole = (inputs / "mni152_3mm_0000.nii.gz").read_bytes()
    (cut / "t_0000.nii.gz").write_bytes(whole[: len(whole) // 2])
    _fails(["-i", str(cut)] + base, capsys, "t_0000.nii.gz", "truncated")
    four = tmp_path / "four"
    four.mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 4, 5, 6), np.float32), isVector=False),
                    str(four / "v_0000.nii.gz"))
    _fails(["-i", str(four)] + base, capsys, "v_0000.nii.gz", "4D")
    flat = tmp_path / "flat"
    flat.mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 9), np.float32)), str(flat / "s_0000.nii.gz"))
    _fails(["-i", str(flat)] + base, capsys, "s_0000.nii.gz", "2D image but the model is 3D")
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(inputs / "mni152_3mm_0000.nii.gz", extra / "mni152_3mm_0001.nii.gz")
    _fails(["-i", str(extra)] + base, capsys, "mni152_3mm_0001.nii.gz", "channel 1")
    nan = tmp_path / "nan"
    nan.mkdir()
    holes = np.ones((8, 9, 10), np.float32)
    holes[2, 3, 4:6] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(holes), str(nan / "n_0000.nii.gz"))
    _fails(["-i", str(nan)] + base, capsys, "n_0000.nii.gz", "NaN or Inf values (2 voxel(s))")
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(["-i", str(empty)] + base, capsys, "no image files")
    _fails(["-i", str(tmp_path / "missing")] + base, capsys, "input folder not found")
    _fails(["-i", str(inputs), "-o", str(inputs)], capsys, "must differ from -i")
    _fails(["-i", str(inputs), "-o", str(out), "--step-size", "0"], capsys, "--step-size")
    _fails(["-o", str(out)], capsys, "-i INPUT and -o OUTPUT are required")
    _fails(["-i", str(inputs)] + base + ["-f", "3"], capsys, "fold_3")
    _fails(["-i", str(inputs)] + base + ["-c", "2d"], capsys, "no trained model", "config=2d")
    _fails(["-i", str(inputs)] + base + ["-d", "999"], capsys, "No dataset matches '999'")
    if not torch.cuda.is_available():
        _fails(["-i", str(inputs)] + base + ["--device", "cuda"], capsys, "no CUDA GPU is visible")
    with pytest.raises(SystemExit):
        main(["-i", str(inputs)] + base + ["-chk", "nope"])
    assert not out.exists() or not any(out.iterdir())


def test_channel_refusals(roots, shared_data, tmp_path, capsys):
    _two_channel_model(roots, shared_data, tmp_path)
    d = tmp_path / "in2"
    d.mkdir()
    shutil.copy(shared_data / "Dataset001_BrainMask" / "imagesTr" / "mni152_3mm_0000.nii.gz", d / "p_0000.nii.gz")
    base = ["-i", str(d), "-o", str(tmp_path / "o"), "-d", "2"]
    _fails(base, capsys, "case 'p' is missing channel file(s) p_0001.nii.gz")
    shutil.move(d / "p_0000.nii.gz", d / "p.nii.gz")
    _fails(base, capsys, "p.nii.gz", "needs 2 channels")


def test_no_model_and_ambiguous_models(roots, shared_data, inputs, tmp_path, capsys):
    base = ["-i", str(inputs), "-o", str(tmp_path / "o")]
    _fails(base, capsys, "no trained model")
    make_model_folder(roots["results"], shared_data / "Dataset001_BrainMask", plans=COARSE, config_name="3d_a")
    make_model_folder(roots["results"], shared_data / "Dataset001_BrainMask", plans=brain_plans(config_name="3d_b"),
                      config_name="3d_b")
    _fails(base, capsys, "several trained models", "MedNeXtTrainer__3d_a", "MedNeXtTrainer__3d_b")


def test_determine_postprocessing_then_predict_applies_it(roots, model, inputs, tmp_path, capsys):
    _fails(["--determine-postprocessing"], capsys, "gt_segmentations")
    gt = roots["preprocessed"] / "Dataset001_BrainMask" / "gt_segmentations"
    gt.mkdir(parents=True)
    _fails(["--determine-postprocessing"], capsys, "no fold_*/validation")
    val = model / "fold_0" / "validation"
    val.mkdir()
    ref = np.zeros((10, 10, 10), np.uint8)
    ref[2:6, 2:6, 2:6] = 1
    pred = ref.copy()
    pred[8:10, 8:10, 8:10] = 1
    sitk.WriteImage(sitk.GetImageFromArray(ref), str(gt / "c0.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(pred), str(val / "c0.nii.gz"))
    assert main(["--determine-postprocessing", "-d", "1"]) == 0
    rules = json.loads((model / "postprocessing.json").read_text())
    assert rules["largest_foreground_component"] is True
    assert Predictor.from_model_folder(model, device="cpu").postprocessing.largest_foreground_component
    assert main(["-i", str(inputs), "-o", str(tmp_path / "out"), "--disable-tta", "-np", "0"]) == 0
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "mni152_3mm.nii.gz")))
    from scipy import ndimage
    assert ndimage.label(seg > 0)[1] <= 1
