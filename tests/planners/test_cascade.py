"""The cascade configuration is planned whenever 3d_lowres is; --lowres forces both."""
from __future__ import annotations

from mednext_fw.planners.cascade import add_cascade
from mednext_fw.planners.plans import Configuration


def _cfg(name, spacing):
    return Configuration(name=name, dim=3, spacing=spacing, patch_size=[32] * 3, batch_size=2,
                         median_image_size=[40] * 3, normalization=["zscore"], use_mask_for_norm=[False],
                         data_identifier=f"mednextPlans_{name}")


def test_cascade_follows_lowres_and_shares_fullres_data():
    configs = {"3d_fullres": _cfg("3d_fullres", [1.0] * 3), "3d_lowres": _cfg("3d_lowres", [2.0] * 3)}
    notes: list[str] = []
    add_cascade(configs, notes)
    cascade = configs["3d_cascade_fullres"]
    assert cascade.previous_stage == "3d_lowres" and configs["3d_lowres"].next_stage == "3d_cascade_fullres"
    assert cascade.data_identifier == "mednextPlans_3d_fullres" and cascade.spacing == [1.0] * 3
    assert configs["3d_fullres"].previous_stage is None and notes


def test_no_cascade_without_lowres():
    configs = {"3d_fullres": _cfg("3d_fullres", [1.0] * 3)}
    add_cascade(configs, [])
    assert set(configs) == {"3d_fullres"}
