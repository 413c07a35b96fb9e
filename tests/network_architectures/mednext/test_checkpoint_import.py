import pytest
import torch
from monai.networks.nets import MedNeXt as MonaiMedNeXt

from mednext_fw.network_architectures.mednext import (
    CheckpointImportError,
    create_mednext,
    load_monai_state_dict,
    load_reference_checkpoint,
    to_reference_state_dict,
)

torch.set_num_threads(2)

# Written out by hand from the reference's module names (MedNextV1.py / blocks.py), independent of
# the converter: our top-level prefix -> reference prefix, and our block parts -> reference parts.
TOP = [("encoder.{i}.", "enc_block_{i}."), ("down.{i}.", "down_{i}."), ("up.{i}.", "up_{i}."),
       ("decoder.{i}.", "dec_block_{i}.")]
PARTS = {".dw.": ".conv1.", ".expand.": ".conv2.", ".compress.": ".conv3.", ".shortcut.": ".res_conv.",
         ".grn.gamma": ".grn_gamma", ".grn.beta": ".grn_beta"}


def _reference_name(key: str) -> str:
    if key.startswith("heads."):
        return f"out_{key.split('.')[1]}.conv_out.{key.split('.')[-1]}"
    for ours, ref in TOP:
        for i in range(4):
            if key.startswith(ours.format(i=i)):
                key = ref.format(i=i) + key[len(ours.format(i=i)):]
    for ours, ref in PARTS.items():
        key = key.replace(ours, ref)
    return key


@pytest.mark.parametrize("dim,shape", [(3, (32, 16, 16)), (2, (32, 32))])
@pytest.mark.parametrize("ds", [True, False])
@pytest.mark.parametrize("layout", ["S", "B"])
def test_parity_with_monai(dim, shape, ds, layout):
    torch.manual_seed(0)
    ratios = {} if layout == "S" else dict(encoder_expansion_ratio=(2, 3, 4, 4), decoder_expansion_ratio=(4, 4, 3, 2),
                                           bottleneck_expansion_ratio=4)
    monai = MonaiMedNeXt(spatial_dims=dim, init_filters=4, in_channels=2, out_channels=3, kernel_size=3,
                         deep_supervision=ds, use_residual_connection=True, **ratios)
    with torch.no_grad():  # non-trivial norms and biases
        for name, p in monai.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    ours = load_monai_state_dict(monai.state_dict())
    assert ours.arch.dim == dim and ours.deep_supervision == ds
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in monai.parameters())
    monai.train()  # MONAI returns its DS outputs only in training mode (GroupNorm is mode-independent)
    x = torch.randn((1, 2) + shape)
    with torch.no_grad():
        expected, got = monai(x), ours(x)
    expected = list(expected) if ds else [expected]
    got = got if ds else [got]
    assert len(got) == len(expected) == (5 if ds else 1)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1e-4, rtol=0)


def test_reference_checkpoint_round_trip(tmp_path):
    torch.manual_seed(1)
    source = create_mednext("B", 1, 3, deep_supervision=True, grn=True, n_channels=4, block_counts=1)
    ref_state = {"module." + _reference_name(k): v for k, v in source.state_dict().items()}
    ref_state["module.dummy_tensor"] = torch.ones(1)
    assert any(k.startswith("module.enc_block_0.0.conv1") for k in ref_state)
    path = tmp_path / "model_final_checkpoint.model"
    torch.save({"epoch": 3, "state_dict": ref_state, "optimizer_state_dict": {}}, path)

    rebuilt = load_reference_checkpoint(path)
    assert rebuilt.arch == source.arch
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        for a, b in zip(source(x), rebuilt(x)):
            assert torch.equal(a, b)
    into = create_mednext("B", 1, 3, deep_supervision=True, grn=True, n_channels=4, block_counts=1)
    load_reference_checkpoint(path, into)
    assert all(torch.equal(v, into.state_dict()[k]) for k, v in source.state_dict().items())
    exported = to_reference_state_dict(source.state_dict())
    assert set(exported) == {k[len("module."):] for k in ref_state}


def test_reference_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointImportError, match="not found"):
        load_reference_checkpoint(tmp_path / "missing.model")
    bad = tmp_path / "bad.model"
    torch.save({"state_dict": {"stem.weight": torch.zeros(4, 1, 1, 1, 1), "foo.bar": torch.zeros(1)}}, bad)
    with pytest.raises(CheckpointImportError, match="foo.bar"):
        load_reference_checkpoint(bad)
    src = create_mednext("S", 1, 3, n_channels=4, block_counts=1)
    good = tmp_path / "good.model"
    torch.save({"state_dict": to_reference_state_dict(src.state_dict())}, good)
    with pytest.raises(CheckpointImportError, match="shape mismatch"):
        load_reference_checkpoint(good, create_mednext("S", 1, 5, n_channels=4, block_counts=1))


def test_arch_from_state_dict_reads_levels_and_per_axis_kernels():
    from mednext_fw.network_architectures.mednext import arch_from_state_dict
    from mednext_fw.network_architectures.mednext.model import MedNeXt

    net = create_mednext("B", 1, 3, deep_supervision=True, n_channels=4, strides=[[2, 2, 2], [2, 2, 2]],
                         kernel_sizes=[[1, 3, 3], [3, 3, 3], [3, 3, 3]])
    arch = arch_from_state_dict(net.state_dict())
    assert arch.kernel_sizes == ((1, 3, 3), (3, 3, 3), (3, 3, 3)) and arch.exp_r == (2, 3, 4, 3, 2)
    MedNeXt(arch).load_state_dict(net.state_dict())  # strides are not in the weights: taken as 2
    ref = create_mednext("B", 1, 3, deep_supervision=True, n_channels=4)
    assert arch_from_state_dict(ref.state_dict()) == ref.arch
