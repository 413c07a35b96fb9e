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


def test_refit_longer_is_smooth_shorter_still_reaches_the_end():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = PolyLRSchedule(opt, 1.0, 20)
    before = s.lr_at(10)
    s.refit(10, 40)  # more time: the lr at epoch 10 stays, the rest of the decay is stretched
    assert s.lr_at(10) == pytest.approx(before) and s.progress_at(40) == 1.0
    assert s.progress_at(25) == pytest.approx(0.5 + 15 * 0.5 / 30)
    s.refit(25, 27)  # much less time: no higher lr than a plain run of 27 epochs, and it ends
    assert s.progress_at(26) == pytest.approx(max(26 / 27, s.anchor[1] + 0.5 * (1 - s.anchor[1])))
    lrs = [s.lr_at(e) for e in range(27)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:])) and lrs[-1] <= (1 / 27) ** 0.9 + 1e-12
    restored = PolyLRSchedule(opt, 1.0, 20)
    restored.load_state_dict(s.state_dict())  # a resumed budgeted run keeps the whole mapping
    assert restored.max_epochs == 27 and [restored.lr_at(e) for e in range(27)] == lrs
