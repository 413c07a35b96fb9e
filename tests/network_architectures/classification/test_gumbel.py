import pytest
import torch

from mednext_fw.network_architectures.classification.gumbel import linear_temperature
from mednext_fw.network_architectures.classification.hovit import HoViT, create_hovit
from mednext_fw.network_architectures.classification.hovit_blocks import LeViTBlock


def _small_b(lora_rank: int = 0) -> HoViT:
    """HoViT-B's 4+4 Gumbel structure at small widths, to keep the tests fast."""
    m = HoViT(3, depths=(4, 4), gumbel=True, img_size=32, dims=(32, 48), heads=(1, 1))
    if lora_rank:
        from mednext_fw.network_architectures.classification.lora import inject_lora

        inject_lora(m, lora_rank, 2 * lora_rank)
    return m


def _count_block_calls(model):
    calls = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=name: calls.append(n))
             for name, m in model.named_modules() if isinstance(m, LeViTBlock)]
    return calls, hooks


def _trained_gates(model):
    with torch.no_grad():
        model.stage1.gate_logits.copy_(torch.tensor([0.1, 0.3, 2.0, -1.0]))
        model.stage2.gate_logits.copy_(torch.tensor([0.0, 1.5, 0.2, 0.1]))


def test_eval_runs_exactly_one_block_per_stage_and_training_runs_all():
    m = _small_b()
    _trained_gates(m)
    calls, hooks = _count_block_calls(m)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        m.eval()(x)
    assert calls == ["stage1.blocks.2", "stage2.blocks.1"]
    calls.clear()
    m.train()(x)
    assert len(calls) == 8
    for h in hooks:
        h.remove()


def test_prune_equals_unpruned_eval_output_and_is_compact():
    torch.manual_seed(0)
    m = _small_b(lora_rank=2)
    m.train()(torch.randn(8, 3, 32, 32))
    _trained_gates(m)
    with torch.no_grad():  # a non-zero LoRA update must survive the pruning too
        for name, p in m.named_parameters():
            if "lora_b" in name:
                p.normal_(std=0.05)
    m.eval()
    pruned = m.prune()
    assert m.selected_blocks() == (2, 1)
    assert len(pruned.stage1.blocks) == 1 and len(pruned.stage2.blocks) == 1
    blocks = sum(p.numel() for n, p in m.named_parameters() if ".blocks." in n)
    pruned_blocks = sum(p.numel() for n, p in pruned.named_parameters() if ".blocks." in n)
    assert pruned_blocks < 0.3 * blocks
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(pruned(x), m(x), atol=1e-4)
        assert torch.allclose(m.prune(fuse=False)(x), m(x), atol=1e-6)


def test_linear_temperature_schedule():
    assert linear_temperature(0, 101) == pytest.approx(1.0)
    assert linear_temperature(50, 101) == pytest.approx(0.55)
    assert linear_temperature(100, 101) == pytest.approx(0.1)
    assert linear_temperature(500, 101) == pytest.approx(0.1)


def test_gate_gradient_flows_in_training():
    torch.manual_seed(0)
    m = _small_b().train()
    # not .sum(): the heads' training-mode BatchNorm makes the batch sum of logits constant
    torch.nn.functional.cross_entropy(m(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0])).backward()
    assert m.stage1.gate_logits.grad.abs().sum() > 0


def test_builder_b_has_gumbel_stages_and_s_does_not():
    assert create_hovit("B", 3, img_size=32).selected_blocks() == (0, 0)
    assert create_hovit("S", 3, img_size=32).selected_blocks() == (None, None)
