import pytest
import torch

from mednext_fw.trainers.schedules import PolyLRSchedule


def test_poly_values_and_state():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = PolyLRSchedule(opt, 1e-3, 1000)
    assert s.step(0) == pytest.approx(1e-3)
    assert s.step(500) == pytest.approx(1e-3 * 0.5 ** 0.9)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5 ** 0.9)
    s2 = PolyLRSchedule(opt, 5.0, 1000)
    s2.load_state_dict(s.state_dict())
    assert s2.initial_lr == 1e-3 and s2.epoch == 500
    assert s.lr_at(1000) == 0.0
