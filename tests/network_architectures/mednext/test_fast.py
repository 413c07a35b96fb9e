import pytest
import torch
import torch.nn.functional as F

from mednext_fw.network_architectures.mednext import fast
from mednext_fw.network_architectures.mednext.fast import conv_transpose_phases, depthwise_conv, depthwise_conv_transpose

CONV = {2: F.conv2d, 3: F.conv3d}
CONV_T = {2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _channels_last(shape):
    return torch.randn(shape, dtype=torch.double).movedim(1, -1).contiguous().movedim(-1, 1).requires_grad_()


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("stride,transposed", [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("chunked", [False, True])
def test_matches_autograd_of_native_ops(dim, kernel, stride, transposed, chunked, monkeypatch):
    if chunked:  # one plane per slab: exercises the slab/halo logic of the weight gradient
        monkeypatch.setattr(fast, "_CHUNK_BYTES", 1)
    torch.manual_seed(0)
    c = 3
    x = _channels_last((2, c) + ((4 if transposed else 8),) * dim)
    w = torch.randn((c, 1) + (kernel,) * dim, dtype=torch.double, requires_grad=True)
    b = torch.randn(c, dtype=torch.double, requires_grad=True)
    ours = (depthwise_conv_transpose if transposed else depthwise_conv)(x, w, b, stride, kernel // 2)
    ref = (CONV_T if transposed else CONV)[dim](x, w, b, stride=stride, padding=kernel // 2, groups=c)
    torch.testing.assert_close(ours, ref)
    gy = torch.randn_like(ref)
    for g_ours, g_ref in zip(torch.autograd.grad(ours, (x, w, b), gy), torch.autograd.grad(ref, (x, w, b), gy)):
        torch.testing.assert_close(g_ours, g_ref)


@pytest.mark.parametrize("kernel,stride", [((1, 3, 3), (1, 2, 2)), ((3, 5, 1), (2, 1, 2)), ((1, 3, 3), (1, 1, 1))])
@pytest.mark.parametrize("transposed", [False, True])
def test_per_axis_kernels_and_strides_match_autograd(kernel, stride, transposed):
    torch.manual_seed(0)
    c = 3
    x = _channels_last((2, c, 4, 6, 8) if transposed else (2, c, 6, 8, 10))
    w = torch.randn((c, 1) + kernel, dtype=torch.double, requires_grad=True)
    b = torch.randn(c, dtype=torch.double, requires_grad=True)
    pad = tuple(k // 2 for k in kernel)
    ours = (depthwise_conv_transpose if transposed else depthwise_conv)(x, w, b, stride, pad)
    ref = (F.conv_transpose3d if transposed else F.conv3d)(x, w, b, stride=stride, padding=pad, groups=c)
    torch.testing.assert_close(ours, ref)
    gy = torch.randn_like(ref)
    for g_ours, g_ref in zip(torch.autograd.grad(ours, (x, w, b), gy), torch.autograd.grad(ref, (x, w, b), gy)):
        torch.testing.assert_close(g_ours, g_ref)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 5])
@pytest.mark.parametrize("stride,out_pad", [(1, 0), (2, 0), (2, 1), (3, 0), (3, 2)])
def test_polyphase_transposed_conv_is_the_native_one(dim, kernel, stride, out_pad):
    """Kernel/stride/padding/output-padding combinations, including phases no tap reaches
    (stride 3 > kernel 1, 2), against the native op, in both memory layouts."""
    torch.manual_seed(0)
    c = 3
    for padding in sorted({0, kernel // 2}):
        w = torch.randn((c, 1) + (kernel,) * dim, dtype=torch.double)
        b = torch.randn(c, dtype=torch.double)
        for x in (_channels_last((2, c) + (5,) * dim).detach(), torch.randn((2, c) + (4,) * dim, dtype=torch.double)):
            ref = CONV_T[dim](x, w, b, stride=stride, padding=padding, output_padding=out_pad, groups=c)
            got = conv_transpose_phases(x, w, b, (stride,) * dim, (padding,) * dim, (out_pad,) * dim)
            torch.testing.assert_close(got, ref)
            torch.testing.assert_close(conv_transpose_phases(x, w, None, (stride,) * dim, (padding,) * dim,
                                                             (out_pad,) * dim), ref - b.view(-1, *[1] * dim))


def test_inference_uses_the_polyphase_path_on_cpu(monkeypatch):
    """Without autograd on a CPU the up blocks' transposed conv runs as phases, not the slow native op."""
    calls = []
    monkeypatch.setattr(fast, "conv_transpose_phases", lambda *a: calls.append(1) or CONV_T[3](
        a[0], a[1], a[2], stride=a[3], padding=a[4], groups=a[0].shape[1]))
    x = _channels_last((1, 2, 4, 4, 4)).detach()
    with torch.no_grad():
        depthwise_conv_transpose(x, torch.randn(2, 1, 3, 3, 3, dtype=torch.double), None, 2, 1)
    assert calls == [1]
