"""Classification inference: same preprocessing as the cache, fold averaging, the CSV, model folders."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mednext_fw.inference.classification import (ClassificationInputError, ClassificationPredictor,
                                                 collect_images, predict_to_csv, write_predictions_csv)
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.network_architectures.registry import NETWORKS
from mednext_fw.planners.plans import Configuration, NetworkPlan, Plans
from mednext_fw.planners.classification import ImageItem
from mednext_fw.preprocessing.classification import load_cache, prepare_image, preprocess_images


class MeanBrightness(nn.Module):
    """Logits (-s*mean, s*mean): bright images are class 1; ``s`` differs per fold."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, scale: float = 4.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)))

    def forward(self, x):
        m = x.mean((1, 2, 3)) - 0.5
        return torch.stack([-m, m], 1) * self.scale


if "test_mean_brightness" not in NETWORKS:
    NETWORKS.add("test_mean_brightness", MeanBrightness)


def _config() -> Configuration:
    return Configuration(name="2d_cls", dim=2, spacing=[1, 1], patch_size=[16, 16], batch_size=2,
                         median_image_size=[16, 16], normalization=["rgb_0_1"], use_mask_for_norm=[False],
                         network=NetworkPlan(name="test_mean_brightness"), task="classification",
                         extra={"class_names": ["dark", "bright"], "resize": "pad"})


def _images(folder, values=(30, 220, 100, 250)):
    paths = []
    for i, v in enumerate(values):
        p = folder / "sub" / f"im{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((12, 20), v, np.uint8)).save(p)
        paths.append(p)
    return paths


def test_files_match_the_training_cache_and_folds_are_averaged(tmp_path):
    files = _images(tmp_path)
    cfg = _config()
    preprocess_images([ImageItem(f.stem, f, 0, f.stem) for f in files], cfg, tmp_path / "cache", verbose=False)
    cached, _ = load_cache(tmp_path / "cache")
    nets = [MeanBrightness(scale=2.0), MeanBrightness(scale=6.0)]
    pred = ClassificationPredictor(nets, cfg, ["dark", "bright"])
    from_files = pred.predict_files(files, batch_size=3, progress=False)
    np.testing.assert_allclose(from_files, pred.predict_arrays(cached), rtol=1e-6)
    x = torch.from_numpy(np.array(cached))
    expected = sum(torch.softmax(n(x), 1) for n in nets).detach().numpy() / 2
    np.testing.assert_allclose(from_files, expected, rtol=1e-5)
    assert from_files.argmax(1).tolist() == [0, 1, 0, 1]


def test_collect_and_csv(tmp_path):
    files = _images(tmp_path)
    (tmp_path / "sub" / "notes.txt").write_text("x")
    found, base = collect_images([tmp_path])
    assert found == sorted(files) and base == tmp_path
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClassificationInputError, match="no image files"):
        collect_images([tmp_path / "empty"])
    with pytest.raises(ClassificationInputError, match="no such"):
        collect_images([tmp_path / "missing"])
    out = write_predictions_csv(tmp_path / "o.csv", ["a", "b"], np.array([[0.9, 0.1], [0.2, 0.8]]),
                                ["dark", "bright"], [0, 0])
    rows = list(csv.reader(out.open()))
    assert rows == [["file", "class", "true_class", "prob_dark", "prob_bright"],
                    ["a", "dark", "dark", "0.900000", "0.100000"], ["b", "bright", "dark", "0.200000", "0.800000"]]


def test_predict_from_model_folder(roots, tmp_path):
    cfg = _config()
    model = roots["results"] / "Dataset990_X" / "Some__2d_cls"
    Plans(dataset_name="Dataset990_X", configurations={"2d_cls": cfg}).save(model / "plans.json")
    DatasetJson({"0": "g"}, {"dark": 0, "bright": 1}, ".png", 4, task="classification").save(model / "dataset.json")
    for fold, scale in ((0, 2.0), (1, 6.0)):
        (model / f"fold_{fold}").mkdir(parents=True)
        torch.save({"network_builder": {"name": "test_mean_brightness", "kwargs": {"in_channels": 1, "num_classes": 2}},
                    "network_state": MeanBrightness(scale=scale).state_dict(), "epoch": 1,
                    "trainer_name": "Some", "config_name": "2d_cls"}, model / f"fold_{fold}" / "checkpoint_final.pth")
    files = _images(tmp_path / "in")
    out = predict_to_csv(model, [tmp_path / "in"], tmp_path / "out", device="cpu", progress=False)
    assert out == tmp_path / "out" / "predictions.csv"
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == [f"sub/{f.name}" for f in files]
    assert [r["class"] for r in rows] == ["dark", "bright", "dark", "bright"]
    one = predict_to_csv(model, [files[1]], tmp_path / "one.csv", folds=[1], device="cpu", progress=False)
    p = float(next(csv.DictReader(one.open()))["prob_bright"])
    x = torch.from_numpy(prepare_image(np.full((1, 12, 20), 220, np.uint8), cfg))[None]
    assert p == pytest.approx(torch.softmax(MeanBrightness(scale=6.0)(x), 1)[0, 1].item(), abs=1e-6)
