import pytest
import torch

from mednext_fw.trainers.losses import DeepSupervisionLoss, DiceCELoss, deep_supervision_weights


def test_weights_match_mednext_reference():
    w = deep_supervision_weights(5)
    assert w == pytest.approx([0.516, 0.258, 0.129, 0.0645, 0.0323], abs=5e-4)
    assert sum(w) == pytest.approx(1.0)


def test_weighted_sum_over_outputs():
    class Mean(torch.nn.Module):
        def forward(self, out, tgt):
            return out.mean()

    outs = [torch.full((1, 2, 8, 8, 8), 1.0), torch.full((1, 2, 4, 4, 4), 2.0), torch.full((1, 2, 2, 2, 2), 4.0)]
    tgts = [torch.zeros((1, 1) + o.shape[2:]) for o in outs]
    loss = DeepSupervisionLoss(Mean())(outs, tgts)
    w = deep_supervision_weights(3)
    assert loss.item() == pytest.approx(w[0] * 1 + w[1] * 2 + w[2] * 4)


def test_shape_mismatch_is_explained():
    loss = DeepSupervisionLoss(DiceCELoss())
    with pytest.raises(ValueError, match="do not match|does not match"):
        loss([torch.zeros(1, 2, 8, 8, 8)], [torch.zeros(1, 1, 4, 4, 4)])
