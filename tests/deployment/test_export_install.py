"""Export -> install elsewhere -> predict gives the original model's labels byte for byte; every refusal
installs nothing."""
from __future__ import annotations

import gzip
import json
import shutil
import zipfile

import pytest

from mednext_fw.cli import export_model, install_model, predict
from tests.deployment.zips import edit_manifest, rewrite
from tests.inference.model_factory import brain_plans, make_model_folder

CASES = ("mni152_3mm", "colin27_2mm")


@pytest.fixture(scope="module")
def images(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("images")
    for case in CASES:
        shutil.copy(shared_data / "Dataset001_BrainMask" / "imagesTr" / f"{case}_0000.nii.gz", d)
    return d


@pytest.fixture(scope="module")
def model(tmp_path_factory, shared_data):
    """A tiny MedNeXt model folder (two folds, postprocessing decided) in its own results root."""
    results = tmp_path_factory.mktemp("results")
    folder = make_model_folder(results, shared_data / "Dataset001_BrainMask", folds=(0, 1),
                               plans=brain_plans(spacing=(8.0, 8.0, 8.0)))
    (folder / "postprocessing.json").write_text(json.dumps({"largest_foreground_component": True}))
    return folder


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "brain.zip"
    assert export_model.main(["-m", str(model), "-o", str(out)]) == 0
    return out


def _voxels(path):
    return gzip.decompress(path.read_bytes())


def test_installed_model_and_zip_predict_the_original_labels_byte_for_byte(model, exported, images, tmp_path,
                                                                          monkeypatch):
    original = model
    monkeypatch.setenv("MEDNEXT_results", str(original.parents[1]))
    common = ["-i", str(images), "--disable-tta", "-np", "0", "--backend", "torch"]
    assert predict.main(common + ["-o", str(tmp_path / "orig"), "-d", "1", "-c", "3d_fullres"]) == 0

    second = tmp_path / "second_results"
    assert install_model.main([str(exported), "--results", str(second)]) == 0
    installed = second / "Dataset001_BrainMask" / "MedNeXtTrainer__3d_fullres"
    assert (installed / "manifest.json").is_file() and (installed / "fold_0" / "checkpoint_final.pth").is_file()
    for name in ("plans.json", "dataset.json", "postprocessing.json"):
        assert (installed / name).read_bytes() == (original / name).read_bytes()

    monkeypatch.delenv("MEDNEXT_results")  # -m needs no environment
    for model, out in ((installed, "from_folder"), (exported, "from_zip")):
        assert predict.main(common + ["-o", str(tmp_path / out), "-m", str(model)]) == 0
        for case in CASES:
            a, b = tmp_path / "orig" / f"{case}.nii.gz", tmp_path / out / f"{case}.nii.gz"
            assert a.read_bytes() == b.read_bytes() or _voxels(a) == _voxels(b)


def test_manifest_lists_every_file_with_its_hash(exported):
    with zipfile.ZipFile(exported) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = set(zf.namelist()) - {"manifest.json"}
    prefix = "Dataset001_BrainMask/MedNeXtTrainer__3d_fullres/"
    assert {prefix + f for f in manifest["files"]} == names
    assert manifest["format_version"] == 1 and manifest["network_name"] == "mednext"
    assert manifest["network_kwargs"]["n_channels"] == 4 and manifest["folds"] == [0, 1]
    assert all(len(h) == 64 for h in manifest["files"].values())


def _refused(capsys, root, argv, *needles):
    assert install_model.main(argv + ["--results", str(root)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def _bad_hash(members):
    name = next(n for n in members if n.endswith("plans.json"))
    members[name] = members[name].replace(b"3d_fullres", b"3d_fullrez", 1)


def _extra_file(members):
    members["Dataset001_BrainMask/MedNeXtTrainer__3d_fullres/evil.py"] = b"print('x')"


def _plugin(manifest):
    manifest["network_name"] = "acme_unet"
    manifest["network_plugin"] = {"group": "mednext_fw.networks", "name": "acme_unet",
                                  "value": "acme.nets:build", "distribution": "acme-nets"}


@pytest.mark.parametrize("damage,needles", [
    (_bad_hash, ["plans.json", "sha256"]),
    (_extra_file, ["evil.py", "not listed"]),
    (edit_manifest(lambda m: m.update(format_version=99)), ["format version 99", "upgrade"]),
    (edit_manifest(_plugin), ["acme_unet", "mednext_fw.networks: acme_unet = acme.nets:build", "acme-nets"]),
    (edit_manifest(lambda m: m.update(network_name="nobody_net")), ["nobody_net", "unknown"]),
    (edit_manifest(lambda m: m.update(dataset="../../outside")), ["dataset", "not a plain folder name"]),
])
def test_damaged_or_foreign_archives_install_nothing(exported, tmp_path, capsys, damage, needles):
    bad = rewrite(exported, tmp_path / "bad.zip", damage)
    root = tmp_path / "results"
    _refused(capsys, root, [str(bad)], str(bad), *needles)
    assert not root.exists() or not any(root.rglob("*"))
    assert predict.main(["-m", str(bad), "-i", str(tmp_path), "-o", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "o").exists()


def test_truncated_archive_installs_nothing(exported, tmp_path, capsys):
    for cut in (0.5, 0.999):
        bad = tmp_path / "cut.zip"
        data = exported.read_bytes()
        bad.write_bytes(data[: int(len(data) * cut)])
        root = tmp_path / "results"
        _refused(capsys, root, [str(bad)], str(bad), "truncated")
        assert not root.exists() or not any(root.rglob("*"))


def test_existing_model_needs_overwrite(exported, tmp_path, capsys):
    root = tmp_path / "results"
    assert install_model.main([str(exported), "--results", str(root)]) == 0
    plans = root / "Dataset001_BrainMask" / "MedNeXtTrainer__3d_fullres" / "plans.json"
    plans.write_text("{}")  # a local edit the refusal must keep
    _refused(capsys, root, [str(exported)], "--overwrite", "already installed")
    assert plans.read_text() == "{}"
    assert install_model.main([str(exported), "--results", str(root), "--overwrite"]) == 0
    assert plans.read_text() != "{}"
    assert [p.name for p in (root / "Dataset001_BrainMask").iterdir()] == ["MedNeXtTrainer__3d_fullres"]


def test_export_refusals(model, tmp_path, capsys):
    model = str(model)
    assert export_model.main(["-m", model, "-o", str(tmp_path / "m.tar")]) == 1
    assert ".zip" in capsys.readouterr().err
    assert export_model.main(["-m", model, "-f", "3", "-o", str(tmp_path / "m.zip")]) == 1
    assert "fold_3" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_onnx_export_per_fold_matches_torch(model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import numpy as np
    import torch

    from mednext_fw.inference.model_folder import load_checkpoint, network_from_checkpoint

    out = tmp_path / "with_onnx.zip"
    assert export_model.main(["-m", str(model), "-o", str(out), "--onnx", "-f", "1"]) == 0
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        graph = zf.read(f"{manifest['dataset']}/MedNeXtTrainer__3d_fullres/{manifest['onnx']['files']['1']}")
    assert manifest["onnx"]["input_shape"] == [1, 1, 32, 32, 32]
    ckpt = model / "fold_1" / "checkpoint_final.pth"
    net = network_from_checkpoint(load_checkpoint(ckpt))
    x = torch.randn(2, 1, 32, 32, 48)
    with torch.no_grad():
        ref = net(x).numpy()
    got = ort.InferenceSession(graph, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    assert np.abs(got - ref).max() <= 1e-4
