import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

from mednext_fw.conversion.btcv import btcv_plan
from mednext_fw.conversion.common import ConversionError
from mednext_fw.conversion.msd import msd_plan
from mednext_fw.conversion.writer import MARKER, write_dataset
from tests.conversion.sources import CASES, brain, copy_tree


def _leftovers(root):
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_split_4d_keeps_frame_geometry_and_values(msd_src, shared_data, tmp_path):
    out = write_dataset(msd_plan(msd_src), tmp_path, verify=False, num_processes=2)  # the worker-pool path
    assert out.name == "Dataset005_Brain"
    src_img, _ = brain(shared_data, CASES[0])
    for ch, factor in ((0, 1.0), (1, 0.5)):
        frame = sitk.ReadImage(str(out / "imagesTr" / f"brain_001_{ch:04d}.nii.gz"))
        assert frame.GetDimension() == 3 and frame.GetSize() == src_img.GetSize()
        assert np.allclose(frame.GetSpacing(), src_img.GetSpacing())
        assert np.allclose(frame.GetOrigin(), src_img.GetOrigin())
        assert np.allclose(frame.GetDirection(), src_img.GetDirection())
        expected = sitk.GetArrayFromImage(src_img).astype(np.float32) * factor
        assert np.allclose(sitk.GetArrayFromImage(frame), expected)
    assert sorted(p.name for p in (out / "imagesTs").iterdir()) == ["brain_003_0000.nii.gz", "brain_003_0001.nii.gz"]
    assert not any(p.name.startswith("._") for p in out.rglob("*"))
    assert _leftovers(tmp_path) == []


def test_copy_link_refuse_overwrite(btcv_src, tmp_path):
    plan = btcv_plan(btcv_src)
    src_label = btcv_src / "Training" / "label" / "label0001.nii.gz"
    out = write_dataset(plan, tmp_path, verify=False)
    assert not os.path.samefile(out / "labelsTr" / "img0001.nii.gz", src_label)
    assert (out / "labelsTr" / "img0001.nii.gz").read_bytes() == src_label.read_bytes()
    with pytest.raises(ConversionError, match="already exists; re-run with --overwrite"):
        write_dataset(btcv_plan(btcv_src), tmp_path, verify=False)
    (out / "stale.txt").write_text("from the old dataset")
    out2 = write_dataset(btcv_plan(btcv_src), tmp_path, link=True, overwrite=True, verify=False)
    assert out2 == out and not (out / "stale.txt").exists()
    assert os.path.samefile(out / "labelsTr" / "img0001.nii.gz", src_label)
    assert os.path.samefile(out / "imagesTs" / "img0061_0000.nii.gz", btcv_src / "Testing" / "img" / "img0061.nii.gz")
    assert src_label.exists()  # linked, never moved
    assert _leftovers(tmp_path) == []


def test_failure_leaves_nothing(msd_src, tmp_path, monkeypatch):
    from mednext_fw.conversion import writer

    src = copy_tree(msd_src, tmp_path / "Task05_Brain")
    (src / "imagesTr" / "brain_002.nii.gz").write_bytes(b"garbage")
    out_root = tmp_path / "raw"
    with pytest.raises(ConversionError, match="brain_002.nii.gz: cannot be read"):
        write_dataset(msd_plan(src), out_root, verify=False)
    assert not out_root.exists() or list(out_root.iterdir()) == []

    calls = []
    real = writer.run_job

    def failing(job):  # the third file fails after two were written
        calls.append(job)
        if len(calls) == 3:
            raise ConversionError(f"{job.source}: simulated failure")
        real(job)

    monkeypatch.setattr(writer, "run_job", failing)
    with pytest.raises(ConversionError, match="simulated failure"):
        write_dataset(msd_plan(msd_src), out_root, verify=False)
    assert list(out_root.iterdir()) == []


def test_interrupted_run_resumes(btcv_src, tmp_path):
    plan = btcv_plan(btcv_src)
    partial = tmp_path / ".Dataset001_BTCV.partial"
    done = partial / "Dataset001_BTCV" / "labelsTr" / "img0001.nii.gz"
    done.parent.mkdir(parents=True)
    done.write_bytes(b"finished by the interrupted run")
    (partial / MARKER).write_text(json.dumps({"source": str(plan.source), "link": False, "folder": "Dataset001_BTCV"}))
    out = write_dataset(plan, tmp_path, verify=False)
    assert (out / "labelsTr" / "img0001.nii.gz").read_bytes() == b"finished by the interrupted run"
    assert (out / "labelsTr" / "img0002.nii.gz").stat().st_size > 1000
    assert _leftovers(tmp_path) == []
    # a partial build from a different run is discarded
    done.parent.mkdir(parents=True)
    done.write_bytes(b"other run")
    (partial / MARKER).write_text(json.dumps({"source": "elsewhere", "link": True, "folder": "Dataset001_BTCV"}))
    out = write_dataset(plan, tmp_path, overwrite=True, verify=False)
    assert (out / "labelsTr" / "img0001.nii.gz").read_bytes() != b"other run"
