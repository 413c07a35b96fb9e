import numpy as np
import pytest

from mednext_fw.trainers.data.dataset import PreprocessedDataError, PreprocessedDataset
from mednext_fw.trainers.data.loader import close_augmenter, make_augmenter
from mednext_fw.trainers.data.augmentation import validation_transforms
from mednext_fw.trainers.data.sampler import PatchLoader
from tests.trainers.synthetic import make_synthetic_dataset


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("synth"), n_cases=2)


def test_memory_mapped_cases_and_errors(synth):
    folder = synth / "mednextPlans_3d_fullres"
    ds = PreprocessedDataset(folder, ["case_000", "case_001"])
    case = ds.load("case_000")
    assert isinstance(case.data, np.memmap) and case.data.shape[1:] == case.seg.shape[1:]
    assert "1" in case.class_locations
    with pytest.raises(PreprocessedDataError, match=r"not completely preprocessed \(nope\)"):
        PreprocessedDataset(folder, ["nope"])
    with pytest.raises(PreprocessedDataError, match="no preprocessed cases"):
        PreprocessedDataset(synth / "missing", [])


def test_loader_oversamples_foreground(synth):
    ds = PreprocessedDataset(synth / "mednextPlans_3d_fullres", ["case_000", "case_001"])
    loader = PatchLoader(ds, 3, [8, 8, 8], oversample_foreground=1 / 3, seed=0)
    for _ in range(5):
        batch = next(loader)
        assert batch["data"].shape == (3, 1, 8, 8, 8) and batch["seg"].dtype == np.int16
        assert (batch["seg"][2] == 1).any()  # the forced sample is centred on foreground


def test_multiprocess_augmenter_yields_batches(synth):
    ds = PreprocessedDataset(synth / "mednextPlans_3d_fullres", ["case_000", "case_001"])
    aug = make_augmenter(PatchLoader(ds, 2, [8, 8, 8], seed=0), validation_transforms(None), 1, seed=3)
    try:
        batch = next(aug)
        assert tuple(batch["data"].shape) == (2, 1, 8, 8, 8)
    finally:
        close_augmenter(aug)


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_closing_busy_workers_raises_no_thread_exception(synth):
    # Closing right after the first batch, while workers are still sending, hit batchgenerators'
    # shutdown race in about half of the runs before close_augmenter handled it.
    ds = PreprocessedDataset(synth / "mednextPlans_3d_fullres", ["case_000", "case_001"])
    for seed in range(4):
        aug = make_augmenter(PatchLoader(ds, 2, [8, 8, 8], seed=seed), validation_transforms(None), 2, seed=seed)
        next(aug)
        close_augmenter(aug)
