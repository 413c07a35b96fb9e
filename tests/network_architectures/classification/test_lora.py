import torch
from torch import nn

from mednext_fw.network_architectures.classification import param_groups
from mednext_fw.network_architectures.classification.hovit import create_hovit
from mednext_fw.network_architectures.classification.lora import LoRALinear, inject_lora, merge_lora


def test_b_starts_at_zero_and_output_is_unchanged():
    torch.manual_seed(0)
    lin = nn.Linear(6, 4)
    lora = LoRALinear.wrap(lin, rank=2, alpha=4)
    assert (lora.lora_b.weight == 0).all() and lora.lora_a.weight.abs().sum() > 0
    x = torch.randn(5, 6)
    assert torch.allclose(lora(x), lin(x))
    assert not lora.weight.requires_grad


def test_a_and_b_train_and_merge_gives_same_output():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    names = inject_lora(model, rank=2, alpha=4, exclude=())
    assert names == ["0", "2"]
    params = [p for p in model.parameters() if p.requires_grad]
    a0, b0 = model[0].lora_a.weight.clone(), model[0].lora_b.weight.clone()
    x, y = torch.randn(16, 6), torch.randn(16, 3)
    for _ in range(2):  # step 1 moves B (A's gradient is 0 while B = 0), step 2 moves A
        for p in params:
            p.grad = None
        ((model(x) - y) ** 2).mean().backward()
        assert model[0].lora_a.weight.grad is not None and model[0].lora_b.weight.grad is not None
        with torch.no_grad():  # plain SGD step (torch.optim's first use costs seconds of imports)
            for p in params:
                p -= 0.1 * p.grad
    assert not torch.equal(model[0].lora_a.weight, a0)
    assert not torch.equal(model[0].lora_b.weight, b0)
    out = model(x)
    merge_lora(model)
    assert type(model[0]) is nn.Linear
    assert torch.allclose(model(x), out, atol=1e-6)


def test_hovit_builder_injects_before_optimiser_except_heads():
    m = create_hovit("S", 3, img_size=32, lora_rank=4, lora_alpha=8)
    loras = [n for n, mod in m.named_modules() if isinstance(mod, LoRALinear)]
    assert len(loras) == 2 * 4 * 2  # qkv, proj, mlp.ln1, mlp.ln2 per block, 2+2 blocks
    assert not any(n.startswith("head") for n in loras)
    assert m.stage1.blocks[0].attn.qkv.linear.scaling == 2.0
    in_groups = {id(p) for g in param_groups(m, 1e-3, 0.0) for p in g["params"]}
    lora_params = [p for n, p in m.named_parameters() if "lora_" in n]
    assert lora_params and all(id(p) in in_groups for p in lora_params)


def test_finetune_freezes_all_but_lora_gates_conv1x1_and_heads():
    m = create_hovit("B", 3, img_size=32, lora_rank=2, finetune=True)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(any(t in n for t in ("lora_", "gate_logits", "conv1x1", "head")) for n in trainable)
    assert "stage1.gate_logits" in trainable and "conv1x1.0.weight" in trainable
