import pytest
import torch

from mednext_fw.network_architectures.mednext import create_mednext

torch.set_num_threads(2)
TINY = dict(n_channels=4, block_counts=1)


def _net(dim=3, **kw):
    torch.manual_seed(0)
    args = dict(TINY)
    args.update(kw)
    return create_mednext("S", 2, 3, dim=dim, **args)


@pytest.mark.parametrize("dim,size", [(3, 16), (2, 32)])
@pytest.mark.parametrize("norm", ["group", "layer"])
@pytest.mark.parametrize("grn", [False, True])
def test_forward_shapes(dim, size, norm, grn):
    net = _net(dim, norm=norm, grn=grn, deep_supervision=True)
    x = torch.randn((2, 2) + (size,) * dim)
    with torch.no_grad():
        outs = net(x)
    assert [tuple(o.shape) for o in outs] == [(2, 3) + (size >> i,) * dim for i in range(5)]
    assert all(torch.isfinite(o).all() for o in outs)


def test_non_cubic_input_and_channels_first_output_values():
    net = _net(3)
    x = torch.randn(1, 2, 32, 16, 48)
    with torch.no_grad():
        y = net(x)
        y_cf = net(x.contiguous(memory_format=torch.channels_last_3d))
    assert y.shape == (1, 3, 32, 16, 48)
    torch.testing.assert_close(y.contiguous(), y_cf.contiguous())


def test_deep_supervision_toggle():
    net = _net(3, deep_supervision=True)
    x = torch.randn(1, 2, 16, 16, 16)
    with torch.no_grad():
        full = net(x)
        net.deep_supervision = False
        single = net(x)
    assert isinstance(full, list) and len(full) == 5
    assert isinstance(single, torch.Tensor)
    torch.testing.assert_close(single, full[0])
    plain = _net(3, deep_supervision=False)
    with pytest.raises(ValueError, match="without deep-supervision heads"):
        plain.deep_supervision = True


def test_input_not_divisible_by_16_is_a_clear_error():
    net = _net(3)
    with pytest.raises(ValueError, match="divisible by 16"):
        net(torch.randn(1, 2, 40, 32, 32))
    with pytest.raises(ValueError, match="expects input of shape"):
        net(torch.randn(1, 1, 32, 32, 32))


def test_up_block_output_has_zero_front_planes():
    net = _net(3)
    x = torch.randn(1, 4, 4, 4, 16)  # channels-last; up[1] maps level 2 (16 ch) to level 1 (8 ch)
    with torch.no_grad():
        y = net.up[1](x)
    assert y.shape == (1, 8, 8, 8, 8)
    assert y[:, 0].abs().max() == 0 and y[:, :, 0].abs().max() == 0 and y[:, :, :, 0].abs().max() == 0


@pytest.mark.parametrize("dim,size", [(3, 16), (2, 16)])
def test_checkpointing_gives_same_output_and_gradients(dim, size):
    x = torch.randn((1, 2) + (size,) * dim)
    grads = []
    for ckpt in (False, True):
        net = _net(dim, deep_supervision=True, checkpointing=ckpt)
        net.train()
        outs = net(x)
        sum(o.square().mean() for o in outs).backward()
        grads.append((outs[0].detach(), {n: p.grad.clone() for n, p in net.named_parameters()}))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for name, g in grads[0][1].items():
        torch.testing.assert_close(g, grads[1][1][name], atol=1e-6, rtol=1e-5, msg=name)


def test_checkpointing_only_when_training_with_grad(monkeypatch):
    import mednext_fw.network_architectures.mednext.model as model_mod

    calls = []
    monkeypatch.setattr(model_mod, "checkpoint", lambda fn, x, **kw: calls.append(kw) or fn(x))
    net = _net(3, checkpointing=True)
    x = torch.randn(1, 2, 16, 16, 16)
    net.eval()
    net(x)
    assert not calls
    net.train()
    with torch.no_grad():
        net(x)
    assert not calls
    net(x)
    assert calls and all(kw.get("use_reentrant") is False for kw in calls)
