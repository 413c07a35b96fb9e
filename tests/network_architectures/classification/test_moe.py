import math

import pytest
import torch

from mednext_fw.network_architectures.classification.moe import NoisyTopKMoE, cv_squared, prob_in_top_k


def test_topk_sparsity_and_only_selected_experts_matter():
    torch.manual_seed(0)
    moe = NoisyTopKMoE(8, 5, num_experts=10, k=3).eval()
    x = torch.randn(2, 8)  # 2 samples x 3 experts leave at least 4 of 10 experts unused
    y, gates, _ = moe(x)
    assert ((gates > 0).sum(1) == 3).all()
    assert torch.allclose(gates.sum(1), torch.ones(2))
    # dense reference over the gated experts only
    ref = torch.einsum("be,eoi,bi->bo", gates, moe.experts_weight, x) + gates @ moe.experts_bias
    assert torch.allclose(y, ref, atol=1e-5)
    unused = (gates == 0).all(0).nonzero().flatten()
    assert len(unused) >= 4
    with torch.no_grad():
        moe.experts_weight[unused] += 100.0
    assert torch.allclose(moe(x)[0], y)
    moe(x)[0].sum().backward()
    assert (moe.experts_weight.grad[unused] == 0).all()


def test_balancing_loss_hand_worked_case():
    # logits row a = [ln3, 0, -1, -2] -> experts 0,1 with gates 3/4, 1/4
    # logits row b = [-2, -1, 0, ln3] -> experts 3,2 with gates 3/4, 1/4
    # importance = [3/4, 1/4, 1/4, 3/4]: mean 1/2, population variance 1/16 -> cv^2 = 1/4
    # load (eval: routed counts) = [1, 1, 1, 1] -> cv^2 = 0; loss = 1.0 * (1/4 + 0)
    moe = NoisyTopKMoE(2, 3, num_experts=4, k=2, balance_loss_weight=1.0).eval()
    with torch.no_grad():
        moe.w_gate.weight.copy_(torch.tensor([[math.log(3), -2.0], [0.0, -1.0], [-1.0, 0.0], [-2.0, math.log(3)]]))
        moe.w_gate.bias.zero_()
    _, gates, loss = moe(torch.eye(2))
    assert torch.allclose(gates, torch.tensor([[0.75, 0.25, 0, 0], [0, 0, 0.25, 0.75]]), atol=1e-6)
    assert loss.item() == pytest.approx(0.25, abs=1e-6)
    moe.balance_loss_weight = 0.01
    assert moe(torch.eye(2))[2].item() == pytest.approx(0.0025, abs=1e-8)


def test_prob_in_top_k_hand_worked_case():
    # k=1, noisy = [1.2, 0.1, -0.3]: expert 0 is in and must beat the 2nd value 0.1 -> Phi(0.9);
    # experts 1, 2 are out and must beat the 1st value 1.2 -> Phi(0 - 1.2)
    clean = torch.tensor([[1.0, 0.0, 0.0]])
    noisy = torch.tensor([[1.2, 0.1, -0.3]])
    top = noisy.topk(2, dim=1).values
    p = prob_in_top_k(clean, noisy, torch.ones(1, 3), top, k=1)
    assert torch.allclose(p, torch.tensor([[0.8159399, 0.1150697, 0.1150697]]), atol=1e-6)


def test_cv_squared_uses_population_variance():
    assert cv_squared(torch.tensor([1.0, 3.0])).item() == pytest.approx(0.25)
    assert cv_squared(torch.tensor([2.0])).item() == 0.0


def test_noise_only_in_training_and_load_is_differentiable():
    torch.manual_seed(0)
    moe = NoisyTopKMoE(8, 4, num_experts=6, k=2, balance_loss_weight=1.0)
    with torch.no_grad():
        moe.w_noise.bias.fill_(3.0)
    x = torch.randn(32, 8)
    moe.eval()
    assert torch.equal(moe(x)[1], moe(x)[1])
    moe.train()
    g1, g2 = moe(x)[1], moe(x)[1]
    assert not torch.equal(g1, g2)
    loss = moe(x)[2]
    loss.backward()
    assert moe.w_noise.weight.grad is not None and moe.w_noise.weight.grad.abs().sum() > 0


def test_invalid_k():
    with pytest.raises(ValueError, match="k must be"):
        NoisyTopKMoE(4, 4, num_experts=3, k=4)
