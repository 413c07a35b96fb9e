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


ANISO = dict(strides=[[1, 2, 2], [1, 2, 2], [2, 2, 2]], kernel_sizes=[[1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3]])


def test_planned_topology_shapes_scales_and_backward():
    net = _net(3, deep_supervision=True, **ANISO)
    assert net.arch.exp_r == (2,) * 7 and len(net.down) == len(net.up) == 3 and len(net.heads) == 4
    assert net.input_divisor == [2, 8, 8]
    assert net.deep_supervision_scales == [(1, 1, 1), (1, .5, .5), (1, .25, .25), (.5, .125, .125)]
    assert tuple(net.encoder[0][0].dw.weight.shape[2:]) == (1, 3, 3)
    assert tuple(net.down[2].dw.weight.shape[2:]) == (3, 3, 3) and net.down[0].stride == (1, 2, 2)
    x = torch.randn(2, 2, 6, 24, 40)  # sides that are not multiples of 16
    outs = net(x)
    assert [tuple(o.shape[2:]) for o in outs] == [tuple(int(s * f) for s, f in zip(x.shape[2:], sc))
                                                   for sc in net.deep_supervision_scales]
    sum(o.square().mean() for o in outs).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    net.deep_supervision = False
    assert net.deep_supervision_scales == [(1, 1, 1)]
    with pytest.raises(ValueError, match=r"per-axis total stride \[2, 8, 8\]"):
        net(torch.randn(1, 2, 6, 24, 36))


def test_up_block_pads_only_stride_2_axes():
    net = _net(3, **ANISO)
    x = torch.randn(1, 4, 3, 5, 8)  # channels-last, level 1 (8 ch) -> level 0 (4 ch), stride (1, 2, 2)
    with torch.no_grad():
        y = net.up[0](x)
    assert y.shape == (1, 4, 6, 10, 4)
    assert y[:, :, 0].abs().max() == 0 and y[:, :, :, 0].abs().max() == 0 and y[:, 0].abs().max() > 0


def test_explicit_reference_topology_is_the_reference():
    default = _net(3, deep_supervision=True)
    explicit = _net(3, deep_supervision=True, strides=[[2, 2, 2]] * 4, kernel_sizes=[[3, 3, 3]] * 5)
    assert {k: v.shape for k, v in default.state_dict().items()} == \
        {k: v.shape for k, v in explicit.state_dict().items()}
    explicit.load_state_dict(default.state_dict())
    x = torch.randn(1, 2, 16, 32, 16)
    with torch.no_grad():
        for a, b in zip(default(x), explicit(x)):
            torch.testing.assert_close(a, b)


def test_impossible_topologies_are_named():
    with pytest.raises(ValueError, match=r"strides\[1\] = \[1, 3, 2\]: every stride must be 1 or 2"):
        _net(3, strides=[[2, 2, 2], [1, 3, 2]], kernel_sizes=[[3, 3, 3]] * 3)
    with pytest.raises(ValueError, match="kernel_sizes: needs 3 levels"):
        _net(3, strides=[[2, 2, 2], [2, 2, 2]], kernel_sizes=[[3, 3, 3]] * 2)
    with pytest.raises(ValueError, match=r"strides\[0\] = \[2, 2\]: needs 3 values"):
        _net(3, strides=[[2, 2]], kernel_sizes=[[3, 3, 3]] * 2)
    with pytest.raises(ValueError, match="odd"):
        _net(3, strides=[[2, 2, 2]], kernel_sizes=[[3, 3, 3], [1, 2, 3]])
    with pytest.raises(ValueError, match="disagrees with kernel_sizes"):
        _net(3, kernel_size=5, strides=[[2, 2, 2]], kernel_sizes=[[3, 3, 3]] * 2)
    with pytest.raises(ValueError, match="exp_r needs 5 entries"):
        _net(3, exp_r=[2] * 7, strides=[[2, 2, 2]] * 2, kernel_sizes=[[3, 3, 3]] * 3)


def test_2d_topology():
    net = _net(2, deep_supervision=True, strides=[[2, 2], [1, 2]], kernel_sizes=[[3, 3], [3, 3], [1, 3]])
    outs = net(torch.randn(1, 2, 8, 12))
    assert [tuple(o.shape[2:]) for o in outs] == [(8, 12), (4, 6), (4, 3)]
