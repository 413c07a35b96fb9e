"""``mednext_predict -m`` / ``--backend`` / ``--num-parts --part-id``: parts cover every case exactly once,
and the new flags' refusals are one-line errors."""
import shutil

import pytest

from mednext_fw.cli.predict import main
from mednext_fw.inference.backends import runtimes
from mednext_fw.inference.parts import select_part
from tests.cli.test_predict import _fails
from tests.inference.model_factory import THRESHOLD_NET, brain_plans, make_model_folder

CASES = ["colin27_1mm", "colin27_2mm", "mni152_1mm", "mni152_2mm", "mni152_3mm"]


@pytest.fixture
def model(tmp_path, shared_data):
    # The threshold net is cheap on full-size heads; not under $MEDNEXT_results: -m needs no environment.
    return make_model_folder(tmp_path / "elsewhere", shared_data / "Dataset001_BrainMask", network=THRESHOLD_NET,
                             plans=brain_plans(spacing=(8.0, 8.0, 8.0)))


@pytest.fixture
def inputs(tmp_path, shared_data):
    d = tmp_path / "in"
    d.mkdir()
    for case in CASES:
        shutil.copy(shared_data / "Dataset001_BrainMask" / "imagesTr" / f"{case}_0000.nii.gz", d)
    return d


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_parts_are_disjoint_and_cover_everything(n):
    names = [f"case{i:02d}" for i in range(11)][::-1]
    parts = [select_part(names, n, k) for k in range(n)]
    flat = [x for p in parts for x in p]
    assert sorted(flat) == sorted(names) and len(flat) == len(set(flat))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_processes_share_one_output_folder(model, inputs, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDNEXT_results", raising=False)
    out = tmp_path / "out"
    seen = []
    for k in range(3):
        before = set(out.iterdir()) if out.exists() else set()
        assert main(["-m", str(model), "-i", str(inputs), "-o", str(out), "--num-parts", "3", "--part-id", str(k),
                     "--disable-tta", "-np", "0", "--backend", "torch"]) == 0
        seen += [p.name for p in set(out.iterdir()) - before]
    assert sorted(seen) == sorted(f"{c}.nii.gz" for c in CASES)


def test_refusals(model, inputs, tmp_path, capsys, monkeypatch):
    base = ["-m", str(model), "-i", str(inputs), "-o", str(tmp_path / "out")]
    _fails(base + ["--num-parts", "2", "--part-id", "2"], capsys, "--part-id")
    _fails(base + ["--num-parts", "0"], capsys, "--num-parts")
    _fails(base + ["-d", "1"], capsys, "-m", "not both")
    _fails(["-m", str(tmp_path / "nope.zip"), "-i", str(inputs), "-o", str(tmp_path / "o")], capsys, "nope.zip")
    _fails(["-m", str(inputs / "mni152_1mm_0000.nii.gz"), "-i", str(inputs), "-o", str(tmp_path / "o")], capsys,
           "not a model folder")
    monkeypatch.setattr(runtimes, "is_available", lambda name: False)
    _fails(base + ["--backend", "onnxruntime"], capsys, "onnxruntime", "not installed")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
