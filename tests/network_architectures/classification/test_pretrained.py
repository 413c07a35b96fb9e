"""Fake checkpoints with the key names of timm / torchvision (full models, so unused keys exist too)."""
import re

import pytest
import torch

from mednext_fw.network_architectures.classification.convnext import ConvNeXtSlice
from mednext_fw.network_architectures.classification.hovit import create_hovit
from mednext_fw.network_architectures.classification.pretrained import (
    PretrainedLoadError, load_convnext_slice, load_resnet18_layer1)
from mednext_fw.network_architectures.classification.resnet import ResNet18Layer1
from mednext_fw.network_architectures.classification.xray_moe import create_xray_moe


def _random_like(sd):
    return {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v.clone() for k, v in sd.items()}


def _timm_convnext_tiny():
    sd = _random_like(ConvNeXtSlice(3, "tiny").state_dict())  # timm names stem/stages.0-1 the same way
    sd.update({"stages.2.downsample.1.weight": torch.zeros(2), "stages.3.blocks.2.gamma": torch.zeros(2),
               "head.norm.weight": torch.zeros(2), "head.fc.weight": torch.zeros(2, 2), "head.fc.bias": torch.zeros(2)})
    return sd


def _to_torchvision(sd):
    rules = [(r"^stem\.(\d)\.", r"features.0.\1."), (r"^stages\.1\.downsample\.(\d)\.", r"features.2.\1."),
             (r"\.conv_dw\.", ".block.0."), (r"\.norm\.", ".block.2."), (r"\.mlp\.fc1\.", ".block.3."),
             (r"\.mlp\.fc2\.", ".block.5."), (r"\.gamma$", ".layer_scale"),
             (r"^stages\.0\.blocks\.", "features.1."), (r"^stages\.1\.blocks\.", "features.3.")]
    out = {}
    for k, v in sd.items():
        if k.startswith(("stages.2", "stages.3", "head")):
            continue
        for pattern, repl in rules:
            k = re.sub(pattern, repl, k)
        out[k] = v.reshape(-1, 1, 1) if k.endswith("layer_scale") else v
    out.update({"features.5.0.block.0.weight": torch.zeros(1), "classifier.2.weight": torch.zeros(1)})
    return out


def _check_landed(model, src, mapping):
    own = model.state_dict()
    for ours, theirs in mapping.items():
        assert torch.equal(own[ours], src[theirs].reshape(own[ours].shape)), ours


def test_timm_convnext_checkpoint_lands(tmp_path):
    src = _timm_convnext_tiny()
    path = tmp_path / "convnext_tiny_timm.pth"
    torch.save({"state_dict": src}, path)  # wrapped, as many training scripts save it
    model = ConvNeXtSlice(3, "tiny")
    load_convnext_slice(model, path)
    _check_landed(model, src, {k: k for k in model.state_dict()})


def test_torchvision_convnext_checkpoint_lands_and_grayscale_adapts(tmp_path):
    src = _to_torchvision(_timm_convnext_tiny())
    path = tmp_path / "convnext_tiny_tv.pth"
    torch.save(src, path)
    model = ConvNeXtSlice(3, "tiny")
    load_convnext_slice(model, path)
    _check_landed(model, src, {"stem.0.weight": "features.0.0.weight",
                               "stages.0.blocks.2.gamma": "features.1.2.layer_scale",
                               "stages.0.blocks.1.mlp.fc2.weight": "features.1.1.block.5.weight",
                               "stages.1.downsample.1.weight": "features.2.1.weight",
                               "stages.1.blocks.2.norm.bias": "features.3.2.block.2.bias"})
    gray = ConvNeXtSlice(1, "tiny")
    load_convnext_slice(gray, path)
    assert torch.allclose(gray.stem[0].weight, src["features.0.0.weight"].sum(1, keepdim=True))


def test_resnet18_checkpoint_lands_through_the_builder(tmp_path):
    src = _random_like(ResNet18Layer1(3).state_dict())
    src = {k: v for k, v in src.items() if "num_batches_tracked" not in k}  # as in old torchvision files
    src.update({"layer2.0.downsample.0.weight": torch.zeros(1), "fc.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)})
    cnx = tmp_path / "convnext.pth"
    res = tmp_path / "resnet18.pth"
    torch.save(_timm_convnext_tiny(), cnx)
    torch.save(src, res)
    m = create_xray_moe(3, width="tiny", hidden=8, convnext_weights=str(cnx), resnet_weights=str(res))
    _check_landed(m.resnet, src, {k: k for k in src if k in m.resnet.state_dict()})
    assert torch.equal(m.resnet.layer1[1].bn2.running_var, src["layer1.1.bn2.running_var"])
    assert not m.resnet.conv1.weight.requires_grad


def test_unknown_missing_and_mismatched_keys_name_the_file(tmp_path):
    model = ResNet18Layer1(3)
    bad = dict(model.state_dict(), **{"layer1.0.se.weight": torch.zeros(1)})
    bad = {("conv9.weight" if k == "conv1.weight" else k): v for k, v in bad.items()}
    path = tmp_path / "odd_resnet.pth"
    torch.save(bad, path)
    with pytest.raises(PretrainedLoadError, match=r"odd_resnet\.pth.*unknown.*conv9"):
        load_resnet18_layer1(model, path)
    sd = model.state_dict()
    del sd["layer1.1.bn2.weight"]
    torch.save(sd, path)
    with pytest.raises(PretrainedLoadError, match=r"odd_resnet\.pth.*missing.*layer1\.1\.bn2\.weight"):
        load_resnet18_layer1(model, path)
    torch.save(_timm_convnext_tiny(), path)
    with pytest.raises(PretrainedLoadError, match=r"odd_resnet\.pth.*unknown"):
        load_resnet18_layer1(model, path)
    with pytest.raises(PretrainedLoadError, match=r"odd_resnet\.pth.*missing.*stages\.1\.blocks\.3"):
        load_convnext_slice(ConvNeXtSlice(3, "xxlarge").to("meta"), path)  # tiny has 3 blocks, not 4
    sd = _timm_convnext_tiny()
    sd["stages.0.blocks.0.mlp.fc1.weight"] = torch.zeros(5, 96)
    torch.save(sd, path)
    with pytest.raises(PretrainedLoadError, match=r"odd_resnet\.pth.*fc1\.weight.*shape"):
        load_convnext_slice(ConvNeXtSlice(3, "tiny"), path)
    with pytest.raises(PretrainedLoadError, match="not found"):
        load_resnet18_layer1(model, tmp_path / "nope.pth")


def test_hovit_baseline_loads_into_gumbel_lora_model(tmp_path):
    torch.manual_seed(0)
    base = create_hovit("S", 3, img_size=32, gumbel=False)
    path = tmp_path / "checkpoint_final.pth"
    torch.save({"network_state": base.state_dict(), "epoch": 3}, path)
    tuned = create_hovit("S", 3, img_size=32, gumbel=True, lora_rank=2, baseline_weights=str(path))
    assert torch.equal(tuned.stage2.blocks[1].mlp.ln2.linear.weight, base.stage2.blocks[1].mlp.ln2.linear.weight)
    tokens = torch.randn(1, 4, 256)
    with torch.no_grad():  # LoRA B starts at zero: the loaded block computes what the baseline did
        assert torch.allclose(tuned.stage1.blocks[0].eval()(tokens), base.stage1.blocks[0].eval()(tokens), atol=1e-5)
    assert torch.equal(tuned.stage1.gate_logits, torch.full((2,), -0.6931471805599453))


@pytest.mark.parametrize("naming", ["stem", "patch_embed"])
def test_timm_levit256_stem_starts_hovit(tmp_path, naming):
    """timm's LeViT-256 stem (current ``stem.convN.linear`` and older ``patch_embed.N.c`` names)."""
    ours = create_hovit("S", num_classes=3, in_channels=3, img_size=32).stem.state_dict()
    src = {}
    for k, v in _random_like(ours).items():
        i, part, rest = k.split(".", 2)
        if naming == "stem":
            src[f"stem.conv{int(i) // 2 + 1}.{'linear' if part == 'conv' else 'bn'}.{rest}"] = v
        else:
            src[f"patch_embed.{i}.{'c' if part == 'conv' else 'bn'}.{rest}"] = v
    src.update({"stages.0.blocks.0.attn.qkv.linear.weight": torch.zeros(2), "head.linear.weight": torch.zeros(2),
                "head_dist.linear.bias": torch.zeros(2)})
    torch.save(src, tmp_path / "levit_256.pth")
    grey = create_hovit("S", num_classes=3, in_channels=1, img_size=32, levit_weights=str(tmp_path / "levit_256.pth"))
    first = next(k for k in src if k.endswith(("conv1.linear.weight", "0.c.weight")))
    assert torch.allclose(grey.stem.state_dict()["0.conv.weight"], src[first].sum(1, keepdim=True))  # grey: summed
    last = next(k for k in src if k.endswith(("conv4.bn.running_var", "6.bn.running_var")))
    assert torch.equal(grey.stem.state_dict()["6.bn.running_var"], src[last])
    del src[last]
    torch.save(src, tmp_path / "broken.pth")
    with pytest.raises(PretrainedLoadError, match="broken.pth.*missing"):
        create_hovit("S", num_classes=3, in_channels=1, img_size=32, levit_weights=str(tmp_path / "broken.pth"))
