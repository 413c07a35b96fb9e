"""MedNeXtTrainer on synthetic preprocessed data: outputs, DDP, weight initialisation."""
import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from mednext_fw.trainers.checkpoint import load_checkpoint, unwrap
from mednext_fw.trainers.experiment import SegmentationSpec
from mednext_fw.trainers.registry import TRAINERS
from mednext_fw.trainers.segmentation import MedNeXtTrainer
from tests.trainers.conftest import fast_settings
from tests.trainers.synthetic import NAME


@pytest.mark.slow
def test_registered_and_outputs_complete(synth_env):
    assert TRAINERS.get("MedNeXtTrainer") is MedNeXtTrainer
    trainer = MedNeXtTrainer(SegmentationSpec(NAME, fold="1"), fast_settings(final_validation=True))
    trainer.run()
    model = synth_env / "MedNeXtTrainer__3d_fullres"
    fold = model / "fold_1"
    assert json.loads((model / "plans.json").read_text())["configurations"]["3d_fullres"]["patch_size"] == [16] * 3
    assert json.loads((model / "dataset.json").read_text())["labels"] == {"background": 0, "organ": 1}
    for name in ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth"):
        ck = load_checkpoint(fold / name)
        assert {"network_builder", "network_state", "epoch", "trainer_name", "config_name"} <= set(ck)
        assert not any(k.startswith("module.") for k in ck["network_state"])
    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert final["epoch"] == 2 and final["trainer_name"] == "MedNeXtTrainer" and final["config_name"] == "3d_fullres"
    assert final["network_builder"]["kwargs"]["n_channels"] == 4
    assert (fold / "progress.png").read_bytes()[:4] == b"\x89PNG"
    log = (fold / "training_log.txt").read_text()
    assert log.count("train loss") == 2 and "Final validation" in log
    assert "Final validation, estimated: 1 case(s)" in log and "Estimated wall time of 2 epochs x 2" in log
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    cases = {c["case"] for c in summary["metric_per_case"]}
    assert cases == set(trainer.exp.val_cases) and len(cases) == 1
    for c in summary["metric_per_case"]:
        m = c["metrics"]["1"] if "metrics" in c else c["1"]
        assert 0.0 <= m["Dice"] <= 1.0 and "NSD" in m
    for case in cases:
        assert (fold / "validation" / f"{case}.nii.gz").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, env: dict, out_dir: str) -> None:
    os.environ.update(env)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = MedNeXtTrainer(SegmentationSpec(NAME, fold="all"), fast_settings(num_epochs=1, final_validation=True))
    try:
        trainer.run()
        state = {k: v.clone() for k, v in unwrap(trainer.network).state_dict().items()}
        torch.save({"state": state, "steps": trainer.steps_per_rank, "train_batch": trainer.train_iter.data_loader.batch_size},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        trainer.dist.shutdown()


@pytest.mark.slow
def test_ddp_two_gloo_processes(synth_env, tmp_path):
    env = {k: os.environ[k] for k in ("MEDNEXT_raw", "MEDNEXT_preprocessed", "MEDNEXT_results")}
    mp.spawn(_ddp_worker, args=(2, _free_port(), env, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert r0["steps"] == r1["steps"] == [2, 2]  # both ranks stepped every iteration
    assert r0["train_batch"] == r1["train_batch"] == 1  # global batch 2 split over 2 ranks
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"])  # gradients were averaged
    fold = synth_env / "MedNeXtTrainer__3d_fullres" / "fold_all"
    ck = load_checkpoint(fold / "checkpoint_final.pth")
    assert all(torch.equal(ck["network_state"][k], r0["state"][k]) for k in r0["state"])
    log = (fold / "training_log.txt").read_text()
    assert "over 2 process(es)" in log and "optimizer steps per rank [2, 2]" in log
    assert log.count("Epoch 1:") == 1  # only rank 0 writes
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == 4  # both ranks' shares of the validation cases


def test_pretrained_loads_matching_tensors(synth_env):
    src = MedNeXtTrainer(SegmentationSpec(NAME, fold="0"), fast_settings(num_epochs=1))
    src.run()
    ckpt = synth_env / "MedNeXtTrainer__3d_fullres" / "fold_0" / "checkpoint_final.pth"
    dst = MedNeXtTrainer(SegmentationSpec(NAME, fold="1", pretrained=str(ckpt)), fast_settings(num_epochs=1))
    dst.setup()
    saved = load_checkpoint(ckpt)["network_state"]
    assert all(torch.equal(v, saved[k]) for k, v in dst.network.state_dict().items())
    log = (synth_env / "MedNeXtTrainer__3d_fullres" / "fold_1" / "training_log.txt").read_text()
    assert f"loaded {len(saved)} tensors" in log


@pytest.mark.slow
def test_upkern_k3_checkpoint_initialises_k5_run(synth_env):
    import torch.nn.functional as F

    MedNeXtTrainer(SegmentationSpec(NAME, fold="0"), fast_settings(num_epochs=1)).run()
    k3 = synth_env / "MedNeXtTrainer__3d_fullres" / "fold_0" / "checkpoint_final.pth"
    k5 = MedNeXtTrainer(SegmentationSpec(NAME, fold="0", kernel_size=5, upkern_from=str(k3)), fast_settings(num_epochs=1))
    assert k5.exp.model_dir.name == "MedNeXtTrainer_S_kernel5__3d_fullres"  # never mixed with the k3 folds
    k5.setup()
    src = load_checkpoint(k3)["network_state"]
    dw = [k for k, v in k5.network.state_dict().items() if k.endswith("dw.weight") and v.shape[-1] == 5]
    assert dw
    for key in dw:
        expected = F.interpolate(src[key].float(), size=(5, 5, 5), mode="trilinear", align_corners=False)
        assert torch.allclose(k5.network.state_dict()[key], expected)
    others = [k for k in src if k not in dw]
    assert all(torch.equal(k5.network.state_dict()[k], src[k]) for k in others)
    k5.run()
    final = load_checkpoint(k5.exp.fold_dir / "checkpoint_final.pth")
    assert final["network_builder"]["kwargs"]["kernel_size"] == 5
    plans = json.loads((k5.exp.model_dir / "plans.json").read_text())
    assert plans["configurations"]["3d_fullres"]["network"]["kernel_size"] == 5
    assert "UpKern from" in (k5.exp.fold_dir / "training_log.txt").read_text()
