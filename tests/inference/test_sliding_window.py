import pytest
import torch

import mednext_fw.inference.sliding_window as sw
from mednext_fw.inference.gaussian import gaussian_importance_map
from mednext_fw.inference.sliding_window import Placement, SlidingWindowSettings, sliding_window_predict
from mednext_fw.inference.tiling import compute_steps, iter_tiles, pad_to_at_least
from mednext_fw.inference.tta import predict_with_mirroring


def _net(dim=3, cin=1, cout=3):
    torch.manual_seed(0)
    conv = torch.nn.Conv3d if dim == 3 else torch.nn.Conv2d
    # instance norm makes the output depend on the tile, as MedNeXt's GroupNorm does
    norm = torch.nn.InstanceNorm3d if dim == 3 else torch.nn.InstanceNorm2d
    return torch.nn.Sequential(conv(cin, 4, 3, padding=1), norm(4), torch.nn.GELU(), conv(4, cout, 3, padding=1)).eval()


def _naive(net, x, patch, axes=(), step=0.5):
    """Reference: full-size weight map, one tile at a time."""
    xp, unpad = pad_to_at_least(x, patch)
    acc = torch.zeros((3, *xp.shape[1:]))
    w = torch.zeros(xp.shape[1:])
    g = gaussian_importance_map(patch)
    with torch.no_grad():
        for sl in iter_tiles(compute_steps(xp.shape[1:], patch, step), patch):
            acc[(slice(None), *sl)] += predict_with_mirroring(net, xp[(slice(None), *sl)][None], axes)[0] * g
            w[sl] += g
    return (acc / w)[unpad]


def test_patch_sized_input_equals_direct_forward():
    net, x = _net(), torch.randn(1, 16, 16, 16)
    out = sliding_window_predict(net, x, 3, SlidingWindowSettings(patch_size=(16, 16, 16)))
    with torch.no_grad():
        torch.testing.assert_close(out, net(x[None])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch,axes", [(1, ()), (4, ()), (3, (0, 2))])
def test_multi_tile_equals_naive_blending(batch, axes):
    net, x = _net(), torch.randn(1, 37, 29, 20)  # last axis smaller than the patch: padded
    s = SlidingWindowSettings(patch_size=(16, 16, 24), mirror_axes=axes, batch_size=batch)
    out = sliding_window_predict(net, x, 3, s)
    assert out.shape == (3, 37, 29, 20) and out.dtype == torch.float32
    torch.testing.assert_close(out, _naive(net, x, (16, 16, 24), axes), rtol=1e-4, atol=1e-5)


def test_two_dimensional_network_slides_over_slices():
    net, x = _net(dim=2), torch.randn(1, 3, 20, 24)
    out = sliding_window_predict(net, x, 3, SlidingWindowSettings(patch_size=(16, 16), mirror_axes=(1,)))
    assert out.shape == (3, 3, 20, 24)
    for z in range(3):
        s = SlidingWindowSettings(patch_size=(1, 16, 16), mirror_axes=(2,))
        flat = sw._Flat2D(net)
        torch.testing.assert_close(out[:, z:z + 1], sliding_window_predict(flat, x[:, z:z + 1], 3, s))


def test_wrong_output_channels_are_reported():
    with pytest.raises(ValueError, match="expected 2"):
        sliding_window_predict(_net(), torch.randn(1, 16, 16, 16), 2, SlidingWindowSettings(patch_size=(16,) * 3))


def test_out_of_memory_falls_back_to_cpu_accumulation(monkeypatch):
    """The first placement (the accelerator) runs out of memory; the CPU placement finishes."""
    net, x = _net(), torch.randn(1, 24, 20, 20)
    expected = sliding_window_predict(net, x, 3, SlidingWindowSettings(patch_size=(16, 16, 16)))
    cpu = torch.device("cpu")
    monkeypatch.setattr(sw, "placements", lambda device: [Placement(cpu, cpu), Placement(cpu, cpu)])
    calls = []
    real_predict = sw._predict

    def flaky(*args):
        calls.append(args[-1])
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_predict(*args)

    monkeypatch.setattr(sw, "_predict", flaky)
    out = sliding_window_predict(net, x, 3, SlidingWindowSettings(patch_size=(16, 16, 16)))
    assert len(calls) == 2
    torch.testing.assert_close(out, expected)


def test_other_errors_and_last_placement_oom_are_not_swallowed(monkeypatch):
    def boom(*args):
        raise torch.OutOfMemoryError("out of memory")

    monkeypatch.setattr(sw, "_predict", boom)
    with pytest.raises(torch.OutOfMemoryError):
        sliding_window_predict(_net(), torch.randn(1, 16, 16, 16), 3, SlidingWindowSettings(patch_size=(16,) * 3))
    assert sw.is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not sw.is_out_of_memory(RuntimeError("shape mismatch"))
    assert sw.placements(torch.device("cpu")) == [Placement(torch.device("cpu"), torch.device("cpu"))]
    assert len(sw.placements(torch.device("cuda"))) == 2
