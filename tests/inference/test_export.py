import numpy as np
import pytest

from mednext_fw.inference.export import ExportSpec, labels_in_cropped_space, to_native
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import ImageProperties
from mednext_fw.preprocessing.case_properties import CaseProperties

LABELS = DatasetJson(channel_names={"0": "CT"}, labels={"background": 0, "a": 1, "b": 2}, file_ending=".nii.gz",
                     num_training=1)
REGIONS = DatasetJson(channel_names={"0": "CT"}, labels={"background": 0, "whole": [1, 2], "core": 2},
                      file_ending=".nii.gz", num_training=1, regions_class_order=[1, 2])


def _props(shape_before, bbox, spacing, resampled_spacing=None, resampled_shape=None):
    after = [b - a for a, b in bbox]
    return CaseProperties("c", ImageProperties(spacing=list(spacing)), list(shape_before), bbox, after, list(spacing),
                          list(resampled_spacing or spacing), list(resampled_shape or after))


def test_same_spacing_uncrops_and_transposes_back():
    props = _props([6, 8, 10], [[1, 5], [2, 8], [0, 10]], [1.0, 1.0, 1.0])
    rng = np.random.default_rng(0)
    probs = rng.random((3, 4, 6, 10)).astype(np.float32)
    probs /= probs.sum(0)
    spec = ExportSpec([1, 2, 0], 3.0, LABELS)  # transposed (Z,Y,X) = file axes (Y,X,Z)
    seg, nat = to_native(probs, spec, props, with_probabilities=True)
    full = np.zeros((6, 8, 10), int)
    full[1:5, 2:8] = probs.argmax(0)
    np.testing.assert_array_equal(seg, full.transpose(1, 2, 0))
    assert nat.shape == (3, 8, 10, 6)
    np.testing.assert_allclose(nat.sum(0), 1.0, atol=1e-6)  # background = 1 outside the crop box
    assert nat[0].transpose(2, 0, 1)[0].min() == 1.0


def test_streamed_argmax_equals_full_resampling():
    from mednext_fw.preprocessing.resampling import resample_data

    props = _props([20, 30, 30], [[0, 20], [0, 30], [0, 30]], [5.0, 1.0, 1.0], [12.5, 2.0, 2.0], [8, 15, 15])
    rng = np.random.default_rng(1)
    probs = rng.random((3, 8, 15, 15)).astype(np.float32)
    spec = ExportSpec([0, 1, 2], 3.0, LABELS)  # anisotropic: separate z
    seg, kept = labels_in_cropped_space(probs, spec, props, keep_probabilities=True)
    full = resample_data(probs, [20, 30, 30], [12.5, 2.0, 2.0], [5.0, 1.0, 1.0], order=1, order_z=0)
    np.testing.assert_allclose(kept, full, atol=1e-6)
    np.testing.assert_array_equal(seg, full.argmax(0))


def test_regions_painted_in_order():
    props = _props([2, 2, 2], [[0, 2], [0, 2], [0, 2]], [1.0, 1.0, 1.0])
    probs = np.zeros((2, 2, 2, 2), np.float32)
    probs[0, 0] = 0.9  # whole tumour in slice 0
    probs[1, 0, 0] = 0.8  # core inside it
    probs[1, 1, 1, 1] = 0.7  # core outside "whole": still painted as 2
    spec = ExportSpec([0, 1, 2], 3.0, REGIONS)
    seg, nat = to_native(probs, spec, props, with_probabilities=True)
    assert seg[0, 0].tolist() == [2, 2] and seg[0, 1].tolist() == [1, 1] and seg[1, 1, 1] == 2 and seg[1, 0, 0] == 0
    assert nat.shape == (2, 2, 2, 2)


def test_export_reads_the_resampled_spacing_from_the_case_properties():
    # A 2D configuration resampled in-plane only: the slice axis kept 4 mm, which only the case knows.
    props = _props([3, 20, 20], [[0, 3], [0, 20], [0, 20]], [4.0, 0.5, 0.5], [4.0, 1.0, 1.0], [3, 10, 10])
    spec = ExportSpec([0, 1, 2], 3.0, LABELS)
    probs = np.random.default_rng(2).random((3, 3, 10, 10)).astype(np.float32)
    seg, _ = to_native(probs, spec, props)
    assert seg.shape == (3, 20, 20)


def test_shape_mismatch_is_an_error():
    props = _props([4, 4, 4], [[0, 4], [0, 4], [0, 4]], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError):
        to_native(np.zeros((3, 2, 2), np.float32), ExportSpec([0, 1, 2], 3.0, LABELS), props)


@pytest.mark.parametrize("resampled_shape", [[200, 48, 48], [80, 24, 24]])
def test_labels_hold_nothing_full_size_but_the_label_map(resampled_shape):
    """CT-sized inputs: beyond the probabilities, export holds the uint8 label map (a quarter of a
    float volume) and slab-sized temporaries, not resampled classes (numpy reports its allocations
    to tracemalloc). Resampling whole classes held three volumes: int32 map, running max, class."""
    import tracemalloc

    native = [200, 48, 48]
    spacing = [n / r for n, r in zip(native, resampled_shape)]
    props = _props(native, [[0, n] for n in native], [1.0, 1.0, 1.0], spacing, resampled_shape)
    probs = np.random.default_rng(2).random((3, *resampled_shape)).astype(np.float32)
    tracemalloc.start()
    try:
        seg, _ = labels_in_cropped_space(probs, ExportSpec([0, 1, 2], 3.0, LABELS), props)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seg.dtype == np.uint8
    one_native_float = np.prod(native) * 4
    assert peak < 0.6 * one_native_float
