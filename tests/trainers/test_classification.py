"""The classification trainer: loss, batches, schedule, outputs, resume and the CLI end to end."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mednext_fw.network_architectures.registry import NETWORKS
from mednext_fw.trainers.checkpoint import load_checkpoint
from mednext_fw.trainers.classification import ClassificationTrainer, GroupScaledSchedule
from mednext_fw.trainers.classification_data import batch_stream
from mednext_fw.trainers.experiment import RunSpec
from mednext_fw.trainers.settings import TrainingSettings

CLASSES = {"horizontal": 0, "vertical": 1}


def make_synthetic_dataset(raw_root: Path, name: str = "Dataset990_Stripes", cases: int = 5, per_case: int = 6) -> str:
    """Stripes (horizontal vs vertical) with noise; files ``case<c>_img_<i>.png`` carry the case id."""
    rng = np.random.default_rng(0)
    root = raw_root / name
    for cls, label in CLASSES.items():
        for c in range(cases):
            for i in range(per_case // 2):
                stripes = (np.arange(20) // 3 % 2)[:, None] * np.ones((1, 20))
                img = stripes if label == 0 else stripes.T
                img = np.clip(img * 180 + rng.normal(40, 20, img.shape), 0, 255).astype(np.uint8)
                p = root / "imagesTr" / cls / f"case{c}_img_{2 * i + label:03d}.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(p)
    (root / "dataset.json").write_text(json.dumps({"task": "classification", "channel_names": {"0": "grey"},
                                                   "labels": CLASSES, "file_ending": ".png", "name": name}))
    return name


class RecordingNet(nn.Module):
    """A tiny classifier that follows the plug-in conventions and records the trainer's calls."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, num_classes)
        self.steps: list[tuple[int, int]] = []
        self.aux_value = 0.25

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3)))

    def auxiliary_loss(self):
        return torch.tensor(self.aux_value)

    def on_train_step(self, step, total):
        self.steps.append((step, total))


if "test_recording_net" not in NETWORKS:
    NETWORKS.add("test_recording_net", RecordingNet)


class RecordingTrainer(ClassificationTrainer):
    trainer_name = "Recording"
    network_name = "test_recording_net"


@pytest.fixture
def stripes(roots):
    from mednext_fw.preprocessing.classification_run import plan_and_preprocess_classification

    name = make_synthetic_dataset(roots["raw"])
    plan_and_preprocess_classification(name, input_size=16, verbose=False)
    return name


def _settings(**kw) -> TrainingSettings:
    base = {**ClassificationTrainer.settings_defaults, "device": "cpu", "seed": 1, "progress_bar": False,
            "num_workers": 0, **kw}
    return TrainingSettings(**base)


def test_batches_cover_val_once_and_split_across_ranks():
    images = np.arange(7, dtype=np.float32).reshape(7, 1, 1, 1)
    labels = np.arange(7) % 2
    val = batch_stream(images, labels, [0, 2, 3, 5, 6], 2, 0, 1, shuffle=False, seed=0)
    seen = [next(val) for _ in range(3)]  # ceil(5 / 2) batches = one pass
    weighted = [int(v) for b in seen for v, w in zip(b["data"].flatten(), b["weight"]) if w > 0]
    assert weighted == [0, 2, 3, 5, 6]
    r0 = batch_stream(images, labels, list(range(7)), 4, 0, 2, shuffle=True, seed=3)
    r1 = batch_stream(images, labels, list(range(7)), 4, 1, 2, shuffle=True, seed=3)
    first = [next(r0)["data"].flatten().tolist() + next(r1)["data"].flatten().tolist()]
    assert len(first[0]) == 4 and len(set(first[0])) == 4  # the two ranks share one global batch


def test_schedule_keeps_group_ratios():
    p1, p2 = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [p1], "lr": 1e-3}, {"params": [p2], "lr": 1e-2}])
    sched = GroupScaledSchedule(opt, 1e-3, 10, "cosine")
    assert sched.step(5) == pytest.approx(5e-4)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([5e-4, 5e-3])
    const = GroupScaledSchedule(torch.optim.Adam([p1], lr=2e-4), 2e-4, 10)
    assert const.step(9) == 2e-4
    with pytest.raises(ValueError, match="schedule"):
        GroupScaledSchedule(opt, 1e-3, 10, "step")


def test_training_outputs_loss_and_resume(stripes, roots):
    spec = RunSpec(configuration="2d_cls", dataset=stripes, fold="0", trainer_name="Recording", batch_size=4)
    tr = RecordingTrainer(spec, _settings(num_epochs=1))
    assert tr.settings.iters_per_epoch == 6  # 24 training images / batch 4: one pass
    tr.setup()
    x, target = tr.split_batch(next(tr.build_data()[0]))
    tr.model.train()
    out = tr.model(x)
    ce = nn.functional.cross_entropy(out, target[0])
    assert tr.compute_loss(out, target).item() == pytest.approx(ce.item() + 0.25, rel=1e-5)
    tr.run()
    fold = roots["results"] / stripes / "Recording__2d_cls" / "fold_0"
    for f in ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth", "training_log.txt",
              "progress.png", "validation/summary.json", "validation/predictions.csv"):
        assert (fold / f).is_file(), f
    assert tr.network.steps == [(i, 6) for i in range(6)]
    summary = json.loads((fold / "validation/summary.json").read_text())
    for key in ("accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1"):
        assert 0 <= summary[key] <= 1
    assert summary["num_samples"] == 6 and summary["class_names"] == list(CLASSES)
    ckpt = load_checkpoint(fold / "checkpoint_latest.pth")
    assert ckpt["network_builder"] == {"name": "test_recording_net", "kwargs": {"in_channels": 1, "num_classes": 2}}
    assert ckpt["epoch"] == 1 and ckpt["trainer_name"] == "Recording" and ckpt["config_name"] == "2d_cls"

    # precise BN: statistics re-estimated on the training images after the epoch's last step
    bn = tr.network.bn
    assert bn.momentum == 0.1 and int(bn.num_batches_tracked) == 6
    tr.exp.config.batch_size = 100  # one batch holding every training image: exact statistics
    tr.network.train()  # as at the end of a training epoch
    bn.running_mean.fill_(5.0)
    bn.running_var.fill_(7.0)
    tr.recalibrate_batchnorm()
    assert int(bn.num_batches_tracked) == 1
    with torch.no_grad():
        feats = tr.network.conv(torch.from_numpy(np.array(tr.data.images[sorted(tr.data.train_idx)])))
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3)))
    torch.testing.assert_close(bn.running_var, feats.var((0, 2, 3), unbiased=True))
    assert tr.network.training and bn.momentum == 0.1

    resumed = RecordingTrainer(spec, _settings(num_epochs=2, continue_training=True))
    resumed.setup()
    resumed.resume()
    saved = ckpt["optimizer_state"]["state"]
    for k, v in resumed.optimizer.state_dict()["state"].items():
        assert torch.equal(v["exp_avg"], saved[k]["exp_avg"])
    resumed.run()
    assert resumed.epoch == 2 and resumed.network.steps[0] == (6, 12)  # the temperature clock goes on
    log = (fold / "training_log.txt").read_text()
    assert "Epoch 1/2" not in log and "Epoch 2/2" in log and "Resumed from" in log
    assert load_checkpoint(fold / "checkpoint_final.pth")["logger"]["history"]["train_loss"].__len__() == 2


def test_bad_requests_are_named(stripes):
    with pytest.raises(ValueError, match="cached images are 16 px"):
        RecordingTrainer(RunSpec(configuration="2d_cls", dataset=stripes, patch_size=[32]), _settings())
    with pytest.raises(ValueError, match="fold 7"):
        RecordingTrainer(RunSpec(configuration="2d_cls", dataset=stripes, fold="7"), _settings())
    with pytest.raises(ValueError, match="square"):
        RecordingTrainer.from_cli(stripes, "2d_cls", "0", "Recording", {"patch_size": [16, 32]}, _settings())


@pytest.mark.slow
@pytest.mark.parametrize("trainer,kwargs", [("HoViT", "{}"), ("XrayMoE", '{"num_experts": 4, "k": 2}')])
def test_cli_plan_train_predict(roots, shared_data, tmp_path, trainer, kwargs):
    """Dataset101 end to end through the three commands, with a tiny budget."""
    from mednext_fw.cli import plan_and_preprocess, predict, train

    (roots["raw"] / "Dataset101_MRIPlanes").symlink_to(shared_data / "Dataset101_MRIPlanes")
    assert plan_and_preprocess.main(["-d", "101", "--input-size", "32", "-np", "1"]) == 0
    assert train.main(["2d_cls", "0", "-d", "101", "-tr", trainer, "--epochs", "1", "--iters-per-epoch", "2",
                       "--val-iters", "1", "--batch-size", "8", "--network-kwargs", kwargs, "--device", "cpu",
                       "--no-progress"]) == 0
    model = roots["results"] / "Dataset101_MRIPlanes" / f"{trainer}__2d_cls"
    summary = json.loads((model / "fold_0/validation/summary.json").read_text())
    assert summary["num_samples"] == 67  # the whole held-out case, not just --val-iters batches
    out_csv = tmp_path / "pred.csv"
    assert predict.main(["-i", str(shared_data / "Dataset101_MRIPlanes/imagesTr/axial"), "-o", str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 84 and rows[0]["file"].endswith(".png")
    for r in rows:
        probs = [float(r[f"prob_{c}"]) for c in ("sagittal", "coronal", "axial")]
        assert sum(probs) == pytest.approx(1, abs=1e-4)
        assert r["class"] == ("sagittal", "coronal", "axial")[int(np.argmax(probs))]
    assert train.main(["2d_cls", "0", "-d", "101", "-tr", trainer, "--upkern-from", str(out_csv)]) == 1


def test_fold_all_and_variant_folders(stripes):
    from mednext_fw.trainers.classification_data import prepare_classification_experiment

    exp = prepare_classification_experiment(RunSpec(configuration="2d_cls", dataset=stripes, fold="all", trainer_name="HoViT"),
                                            "hovit", {"variant": "S"})
    assert sorted(exp.train_cases) == sorted(exp.val_cases) and len(exp.val_cases) == 30
    assert exp.model_dir.name == "HoViT__2d_cls"
    b = prepare_classification_experiment(RunSpec(configuration="2d_cls", dataset=stripes, trainer_name="HoViT", variant="B"),
                                          "hovit", {"variant": "S"}, lambda side: {"img_size": side})
    assert b.model_dir.name == "HoViT_B_kernel3__2d_cls"  # the segmentation trainers' naming rule
    assert b.config.network.kwargs == {"variant": "B", "img_size": 16} and b.config.network.name == "hovit"
    assert not set(b.train_cases) & set(b.val_cases) and len(b.val_cases) == 6


def _ddp_worker(rank: int, world: int, port: int, dataset: str, out: str) -> None:
    import os

    import torch.distributed as dist

    from mednext_fw.trainers.distributed import DistContext

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    ctx = DistContext(rank=rank, local_rank=rank, world_size=world, initialised_here=True)
    spec = RunSpec(configuration="2d_cls", dataset=dataset, fold="0", trainer_name="Recording", batch_size=4)
    tr = RecordingTrainer(spec, _settings(num_epochs=1), dist_ctx=ctx, device=torch.device("cpu"))
    tr.run()
    torch.save({"state": tr.network.state_dict(), "steps": tr.steps_per_rank, "calls": len(tr.network.steps)},
               f"{out}/rank{rank}.pt")
    ctx.shutdown()


@pytest.mark.slow
def test_ddp_two_gloo_ranks(stripes, roots, tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, stripes, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["steps"] == r1["steps"] == [6, 6] and r0["calls"] == r1["calls"] == 6  # both ranks stepped
    for key, value in r0["state"].items():  # same weights and the same (all-reduced) BatchNorm statistics
        torch.testing.assert_close(value, r1["state"][key])
    fold = roots["results"] / stripes / "Recording__2d_cls" / "fold_0"
    assert (fold / "checkpoint_final.pth").is_file() and (fold / "validation/summary.json").is_file()
    assert load_checkpoint(fold / "checkpoint_final.pth")["epoch"] == 1


def test_augmentation_in_training_only_and_settings_untouched(stripes, roots):
    from dataclasses import asdict

    settings = _settings(num_epochs=1)
    before = asdict(settings)
    spec = RunSpec(configuration="2d_cls", dataset=stripes, fold="0", trainer_name="Recording", batch_size=4)
    tr = RecordingTrainer(spec, settings)
    assert asdict(settings) == before and tr.settings.iters_per_epoch == 6  # the caller's object is untouched
    assert tr.augmentation.enabled  # the planned default preset
    train, val = tr.build_data()
    for _ in range(3):
        v = next(val)
        np.testing.assert_array_equal(v["data"].numpy(), tr.data.images[v["index"].numpy()])  # never augmented
    t = next(train)
    assert t["data"].shape == (4, 1, 16, 16)
    assert not np.array_equal(t["data"].numpy(), tr.data.images[t["index"].numpy()])
    tr.close_data()
    # the recipes' preset, set in plans.json, turns it off
    plans_file = roots["preprocessed"] / stripes / "plans.json"
    plans = json.loads(plans_file.read_text())
    plans["configurations"]["2d_cls"]["extra"]["augmentation"] = {"preset": "none"}
    plans_file.write_text(json.dumps(plans))
    off = RecordingTrainer(spec, _settings(num_epochs=1))
    t = next(off.build_data()[0])
    np.testing.assert_array_equal(t["data"].numpy(), off.data.images[t["index"].numpy()])
    plans["configurations"]["2d_cls"]["extra"]["augmentation"] = {"preset": "default", "rotate": 5}
    plans_file.write_text(json.dumps(plans))
    with pytest.raises(ValueError, match="rotate"):
        RecordingTrainer(spec, _settings(num_epochs=1))


def test_pretrained_weights_selected_in_plans(stripes, roots, tmp_path):
    from mednext_fw.network_architectures.classification.hovit import create_hovit
    from mednext_fw.trainers.plugins import HoViTTrainer

    src = create_hovit("S", num_classes=2, in_channels=1, img_size=16)
    torch.save(src.state_dict(), tmp_path / "hovit_baseline.pth")
    plans_file = roots["preprocessed"] / stripes / "plans.json"
    plans = json.loads(plans_file.read_text())
    plans["configurations"]["2d_cls"]["extra"]["pretrained"] = {
        "hovit": {"baseline_weights": str(tmp_path / "hovit_baseline.pth")},
        "xray_moe": {"convnext_weights": "not/used/by/hovit.pth"}}
    plans_file.write_text(json.dumps(plans))
    tr = HoViTTrainer(RunSpec(configuration="2d_cls", dataset=stripes, fold="0", trainer_name="HoViT"),
                      _settings(num_epochs=1))
    assert tr.exp.config.network.kwargs["baseline_weights"] == str(tmp_path / "hovit_baseline.pth")
    assert "convnext_weights" not in tr.exp.config.network.kwargs
    net = tr.build_network()
    for key, value in src.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key
