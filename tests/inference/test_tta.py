import torch

from mednext_fw.inference.tta import mirror_combinations, predict_with_mirroring


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(2, 4, 3, padding=1), torch.nn.GELU(),
                               torch.nn.Conv3d(4, 3, (3, 1, 5), padding=(1, 0, 2))).eval()


def test_combinations():
    assert mirror_combinations([]) == [()]
    assert mirror_combinations([2, 0]) == [(), (0,), (2,), (0, 2)]
    assert len(mirror_combinations([0, 1, 2])) == 8


def test_tta_equals_mean_of_flipped_predictions():
    net, x = _net(), torch.randn(2, 2, 6, 8, 10)
    with torch.no_grad():
        expected = sum(net(x.flip(d)).flip(d) if d else net(x)
                       for d in [(), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)]) / 8
        got = predict_with_mirroring(net, x, (0, 1, 2))
        batched = predict_with_mirroring(net, x, (0, 1, 2), batch_flips=True)
        plain = predict_with_mirroring(net, x, ())
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(batched, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(plain, net(x))
        assert not torch.allclose(got, plain, atol=1e-3)  # the flips really change something


def test_deep_supervision_output_uses_full_resolution():
    class DS(torch.nn.Module):
        def forward(self, x):
            return [x * 2, x[..., ::2, ::2, ::2]]

    x = torch.randn(1, 1, 4, 4, 4)
    torch.testing.assert_close(predict_with_mirroring(DS(), x, (1,)), x * 2)
