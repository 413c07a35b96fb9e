"""Noisy top-k gated mixture of linear experts (Shazeer et al. 2017) with its balancing loss.

Gating: ``h = W_g x`` (clean logits); while training with noise, ``h + N(0,1) * (softplus(W_n x) + 0.01)``.
The k largest logits are softmaxed and every other expert gets gate 0, so only k experts run per
sample. Balancing loss (already weighted, added by the trainer through ``auxiliary_loss()``)::

    loss = w * (cv2(importance) + cv2(load)),   cv2(v) = var(v) / (mean(v)^2 + 1e-10)

with the *population* variance over experts, ``importance_e = sum_b gate[b, e]`` and
``load_e = sum_b P(expert e in top-k for sample b)`` (the smooth estimator of the paper, with the
noise resampled) while training with noise, otherwise the count of samples routed to ``e``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NOISE_EPS = 0.01


def cv_squared(v: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Squared coefficient of variation with the population variance; 0 for a single value."""
    v = v.float()
    if v.numel() < 2:
        return v.new_zeros(())
    return v.var(correction=0) / (v.mean() ** 2 + eps)


def prob_in_top_k(clean: torch.Tensor, noisy: torch.Tensor, noise_std: torch.Tensor,
                  top_values: torch.Tensor, k: int) -> torch.Tensor:
    """P(expert e still in the top k of sample b if only its own noise is redrawn), shape (B, E).

    ``top_values`` holds the k+1 largest noisy logits per row (descending). An expert now inside the
    top k stays there if its logit beats the (k+1)-th value; one outside must beat the k-th value.
    """
    threshold_in = top_values[:, k:k + 1]
    threshold_out = top_values[:, k - 1:k]
    normal = torch.distributions.Normal(torch.zeros((), device=clean.device), torch.ones((), device=clean.device))
    p_in = normal.cdf((clean - threshold_in) / noise_std)
    p_out = normal.cdf((clean - threshold_out) / noise_std)
    return torch.where(noisy > threshold_in, p_in, p_out)


def balance_loss(gates: torch.Tensor, load: torch.Tensor, weight: float) -> torch.Tensor:
    return weight * (cv_squared(gates.sum(0)) + cv_squared(load))


class NoisyTopKMoE(nn.Module):
    """``(B, in_dim) -> (B, out_dim)``; ``forward`` returns ``(output, gates, balancing_loss)``."""

    def __init__(self, in_dim: int, out_dim: int, num_experts: int = 10, k: int = 3,
                 noisy_gating: bool = True, balance_loss_weight: float = 1e-2):
        super().__init__()
        if not 1 <= k <= num_experts:
            raise ValueError(f"k must be in [1, num_experts={num_experts}], got {k}")
        self.num_experts, self.k = num_experts, k
        self.noisy_gating = noisy_gating
        self.balance_loss_weight = balance_loss_weight
        self.w_gate = nn.Linear(in_dim, num_experts)
        self.w_noise = nn.Linear(in_dim, num_experts)
        self.experts_weight = nn.Parameter(torch.empty(num_experts, out_dim, in_dim))
        self.experts_bias = nn.Parameter(torch.empty(num_experts, out_dim))
        self.reset_experts()

    def reset_experts(self) -> None:
        # each expert starts like a default nn.Linear(in_dim, out_dim)
        bound = 1.0 / math.sqrt(self.experts_weight.shape[-1])
        for w in self.experts_weight:
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        nn.init.uniform_(self.experts_bias, -bound, bound)

    def gating(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Dense gates (B, E) with exactly k non-zeros per row, top-k indices (B, k), and the load."""
        clean = self.w_gate(x)
        noisy_now = self.noisy_gating and self.training
        if noisy_now:
            noise_std = F.softplus(self.w_noise(x)) + NOISE_EPS
            logits = clean + torch.randn_like(clean) * noise_std
        else:
            logits = clean
        m = min(self.k + 1, self.num_experts)
        top_values, top_idx = logits.topk(m, dim=1)
        idx = top_idx[:, :self.k]
        top_gates = torch.softmax(top_values[:, :self.k], dim=1)
        gates = torch.zeros_like(logits).scatter(1, idx, top_gates)
        if noisy_now and self.k < self.num_experts:
            load = prob_in_top_k(clean, logits, noise_std, top_values, self.k).sum(0)
        else:
            load = (gates > 0).sum(0).to(gates.dtype)
        return gates, idx, load

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gates, idx, load = self.gating(x)
        w = self.experts_weight[idx]  # (B, k, out, in): only the selected experts are computed
        y = torch.einsum("bkoi,bi->bko", w, x) + self.experts_bias[idx]
        y = (gates.gather(1, idx).unsqueeze(-1) * y).sum(1)
        return y, gates, balance_loss(gates, load, self.balance_loss_weight)
