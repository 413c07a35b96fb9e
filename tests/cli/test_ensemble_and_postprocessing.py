"""``mednext_ensemble`` and ``mednext_apply_postprocessing`` as a user runs them."""
from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk

from mednext_fw.cli import apply_postprocessing, ensemble
from mednext_fw.inference.postprocessing import PostprocessingRules
from tests.inference.test_ensemble import REAL, _member


def test_ensemble_cli_and_its_refusal(tmp_path, shared_data, capsys):
    a = _member(tmp_path / "a", shared_data, 1)
    b = _member(tmp_path / "b", shared_data, 2)
    assert ensemble.main(["-i", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "out")]) == 0
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "a.nii.gz")))
    np.testing.assert_array_equal(seg, ((a["a"] + b["a"]) / 2).argmax(0))
    (tmp_path / "a" / "b.npz").unlink()
    assert ensemble.main(["-i", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "o2")]) == 1
    assert "b.npz" in capsys.readouterr().err


def test_apply_postprocessing_keeps_the_largest_component(tmp_path, shared_data, capsys):
    ref = sitk.ReadImage(str(shared_data / REAL))
    seg = np.zeros(sitk.GetArrayFromImage(ref).shape, np.uint8)
    seg[10:20, 10:20, 10:20] = 1
    seg[2:4, 2:4, 2:4] = 1  # a stray island
    img = sitk.GetImageFromArray(seg)
    img.CopyInformation(ref)
    (tmp_path / "in").mkdir()
    sitk.WriteImage(img, str(tmp_path / "in" / "x.nii.gz"))
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    PostprocessingRules(largest_foreground_component=True).save(rules_dir / "postprocessing.json")
    (rules_dir / "dataset.json").write_text((shared_data / "Dataset001_BrainMask" / "dataset.json").read_text())
    args = ["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-pp", str(rules_dir / "postprocessing.json")]
    assert apply_postprocessing.main(args) == 0
    out = sitk.ReadImage(str(tmp_path / "out" / "x.nii.gz"))
    arr = sitk.GetArrayFromImage(out)
    assert arr[2:4, 2:4, 2:4].sum() == 0 and arr[10:20, 10:20, 10:20].all()
    assert out.GetSpacing() == ref.GetSpacing() and out.GetDirection() == ref.GetDirection()
    (rules_dir / "dataset.json").unlink()
    assert apply_postprocessing.main(args + ["--overwrite"]) == 1
    assert "dataset.json" in capsys.readouterr().err
    (rules_dir / "postprocessing.json").write_text(json.dumps({"bogus": 1}))
    assert apply_postprocessing.main(args + ["--dataset-json", str(tmp_path / "out" / "nope.json")]) == 1
