"""The trainer, final validation (sliding window + export) and UpKern with a planned anisotropic topology
and a patch whose sides are not multiples of 16."""
import json

import pytest
import torch

from mednext_fw.planners.plans import PlanEditError, Plans
from mednext_fw.trainers.checkpoint import load_checkpoint
from mednext_fw.trainers.experiment import SegmentationSpec
from mednext_fw.trainers.segmentation import MedNeXtTrainer
from tests.trainers.conftest import fast_settings, point_roots
from tests.trainers.synthetic import NAME, make_synthetic_dataset

STRIDES = [[1, 2, 2], [2, 2, 2]]
KERNELS = [[1, 3, 3], [3, 3, 3], [3, 3, 3]]


@pytest.fixture
def aniso_env(tmp_path, monkeypatch):
    root = tmp_path / "data"
    pre = make_synthetic_dataset(root, n_cases=3, shape=(20, 36, 36))
    plans = Plans.load(pre / "plans.json")
    cfg = plans.configurations["3d_fullres"]
    cfg.patch_size = [8, 24, 20]  # multiples of the total strides [2, 4, 4], not of 16
    cfg.network.strides, cfg.network.kernel_sizes = STRIDES, KERNELS
    plans.save(pre / "plans.json")
    return point_roots(monkeypatch, root, tmp_path / "results")


def test_train_validate_and_upkern_with_planned_topology(aniso_env):
    trainer = MedNeXtTrainer(SegmentationSpec(NAME, fold="0"), fast_settings(num_epochs=1, final_validation=True))
    trainer.run()
    net = trainer.network
    assert net.strides == ((1, 2, 2), (2, 2, 2)) and len(trainer.deep_supervision_scales()) == 3
    assert trainer.deep_supervision_scales()[1] == (1.0, 0.5, 0.5)
    fold = aniso_env / "MedNeXtTrainer__3d_fullres" / "fold_0"
    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert final["network_builder"]["kwargs"]["strides"] == STRIDES
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == 1  # sliding window over 20x36x36 with an 8x24x20 patch

    # -k 5 turns every planned kernel side > 1 into 5; UpKern grows those and copies the 1-sized axis
    k5 = MedNeXtTrainer(SegmentationSpec(NAME, fold="0", kernel_size=5, upkern_from=str(fold / "checkpoint_final.pth")),
                        fast_settings(num_epochs=1))
    assert k5.exp.config.network.kernel_sizes == [[1, 5, 5], [5, 5, 5], [5, 5, 5]]
    k5.setup()
    w3 = final["network_state"]["encoder.0.0.dw.weight"]
    w5 = k5.network.state_dict()["encoder.0.0.dw.weight"]
    assert w5.shape[2:] == (1, 5, 5)
    expected = torch.nn.functional.interpolate(w3[:, :, 0].float(), size=(5, 5), mode="bilinear", align_corners=False)
    torch.testing.assert_close(w5[:, :, 0], expected)


def test_patch_override_that_does_not_fit_the_strides_is_refused(aniso_env):
    with pytest.raises(PlanEditError, match=r"patch_size \[8, 24, 18\].*axis 2: 18 is not a multiple of 4"):
        MedNeXtTrainer(SegmentationSpec(NAME, fold="0", patch_size=[8, 24, 18]), fast_settings(num_epochs=1))
