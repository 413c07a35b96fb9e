"""The time estimate printed before predicting: tiles x TTA x folds x a measured tile time."""
import pytest

from mednext_fw.inference import Predictor
from mednext_fw.inference.estimate import (EXPORT_SECONDS_PER_VOXEL_CLASS, estimate_prediction,
                                           preprocessed_shape, tiles_per_image)
from mednext_fw.inference.tiling import compute_steps, num_tiles
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import read_header
from tests.inference.model_factory import brain_plans, tiny_network


def test_tiles_follow_the_sliding_window():
    assert tiles_per_image([45, 54, 45], [32, 32, 32], 0.5) == 2 * 3 * 2 == \
        num_tiles(compute_steps([45, 54, 45], [32, 32, 32], 0.5))
    assert tiles_per_image([20, 54, 45], [32, 32, 32], 0.5) == 1 * 3 * 2  # padded up to one tile
    assert tiles_per_image([10, 64, 48], [32, 32], 0.5) == 10 * 3 * 2  # a 2D model runs per slice


def test_preprocessed_shape_from_the_header():
    # sitk (x, y, z) 181 x 217 x 181 at 1 mm -> numpy (z, y, x) at 4 mm
    assert preprocessed_shape([181, 217, 181], [1.0, 1.0, 1.0], [0, 1, 2], [4.0, 4.0, 4.0]) == [45, 54, 45]
    # the coarse axis (sitk z = 5 mm) moved first by the plans; a 2D configuration keeps it
    assert preprocessed_shape([100, 80, 20], [1.0, 1.0, 5.0], [0, 1, 2], [2.0, 2.0]) == [20, 40, 50]


def test_estimate_counts_tta_and_folds():
    est = estimate_prediction([[45, 54, 45]], [7e6], [32, 32, 32], 0.5, num_mirror_axes=3, num_folds=5,
                              tile_seconds=0.1, num_classes=2)
    assert est.forward_passes == 12 * 8 * 5
    assert est.seconds == pytest.approx(480 * 0.1 + EXPORT_SECONDS_PER_VOXEL_CLASS * 2 * 7e6)
    assert "480 network passes (tiles x TTA x folds) x 0.100 s measured" in est.describe()


def test_predictor_measures_its_tile_time(shared_data):
    ds_dir = shared_data / "Dataset001_BrainMask"
    dataset = DatasetJson.load(ds_dir / "dataset.json")
    nets = [tiny_network(s)[0] for s in (1, 2)]
    predictor = Predictor(nets, brain_plans(), "3d_fullres", dataset, device="cpu", tta=True)
    tile = predictor.measure_tile_seconds()
    assert 0 < tile < 30
    image = ds_dir / "imagesTr" / "colin27_1mm_0000.nii.gz"
    est = predictor.estimate_files({"colin27_1mm": [image]})
    header = read_header(image)
    shape = preprocessed_shape(header.size, header.spacing, [0, 1, 2], [4.0, 4.0, 4.0])
    assert est.cases == 1 and est.forward_passes == tiles_per_image(shape, [32] * 3, 0.5) * 8 * 2
    assert all(n.training is False for n in nets)  # measuring did not leave a network in training mode


def test_small_jobs_are_not_timed_and_slow_tiles_are_timed_once(shared_data, monkeypatch):
    dataset = DatasetJson.load(shared_data / "Dataset001_BrainMask" / "dataset.json")
    predictor = Predictor([tiny_network(1)[0]], brain_plans(), "3d_fullres", dataset, device="cpu", tta=False)
    est = predictor.estimate([[20, 20, 20]], [8000.0], time_above_passes=2)  # one tile: timing it doubles the job
    assert est.forward_passes == 1 and est.tile_seconds is None and "too few to be worth timing" in est.describe()
    passes = []
    net = predictor.networks[0]
    monkeypatch.setattr(net, "forward", lambda x: passes.append(tuple(x.shape[2:])) or x)
    # on the CPU a half-sided tile is timed first (warm-up, then one pass): 5 s there is 8 x 5 s for
    # the 32^3 tile, no more passes
    clock = iter([0.0, 7.0, 0.0, 5.0])
    monkeypatch.setattr("time.perf_counter", lambda: next(clock))
    assert predictor.measure_tile_seconds() == 40.0 and passes == [(16, 16, 16)] * 2
    # a fast half tile: the full tile is timed, its warm-up alone when that is slow
    passes.clear()
    clock = iter([0.0, 0.1, 0.0, 0.1, 0.0, 5.0])
    assert predictor.measure_tile_seconds() == 5.0 and passes == [(16, 16, 16)] * 2 + [(32, 32, 32)]
