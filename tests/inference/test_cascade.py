"""Which previous-stage model a cascade stage uses: one rule for training and prediction."""
from mednext_fw.inference.cascade import previous_stage_path


def test_same_variant_first_then_the_planned_network(tmp_path):
    cascade = tmp_path / "MedNeXtTrainer_B_kernel5__3d_cascade_fullres"
    planned = tmp_path / "MedNeXtTrainer__3d_lowres"
    assert previous_stage_path(cascade, "3d_lowres") == planned  # nothing trained yet: what to train
    planned.mkdir()
    assert previous_stage_path(cascade, "3d_lowres") == planned
    same = tmp_path / "MedNeXtTrainer_B_kernel5__3d_lowres"
    same.mkdir()
    assert previous_stage_path(cascade, "3d_lowres") == same
    plain = tmp_path / "MyTrainer__3d_cascade_fullres"
    assert previous_stage_path(plain, "3d_lowres") == tmp_path / "MyTrainer__3d_lowres"
