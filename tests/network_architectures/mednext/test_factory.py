import pytest

from mednext_fw.network_architectures.mednext import create_mednext
from mednext_fw.network_architectures.registry import NETWORKS, build_network

# The reference's trainable parameter counts (3D, 1 input channel, 14 classes, deep supervision on)
# minus its one dummy checkpointing parameter.
REFERENCE_COUNTS = {
    ("S", 3): 5_564_806, ("S", 5): 5_994_438,
    ("B", 3): 10_540_198, ("B", 5): 10_969_830,
    ("M", 3): 17_562_854, ("M", 5): 18_274_726,
    ("L", 3): 61_793_158, ("L", 5): 63_006_790,
}
DS_HEADS_14 = 13_496  # 4 extra heads at 14 classes


@pytest.mark.parametrize("variant,kernel", sorted(REFERENCE_COUNTS))
def test_parameter_counts_match_reference(variant, kernel):
    net = create_mednext(variant, 1, 14, kernel_size=kernel, deep_supervision=True)
    assert sum(p.numel() for p in net.parameters()) == REFERENCE_COUNTS[(variant, kernel)]


def test_ds_heads_only_exist_with_deep_supervision():
    with_ds = create_mednext("S", 1, 14, deep_supervision=True)
    without = create_mednext("S", 1, 14, deep_supervision=False)
    diff = sum(p.numel() for p in with_ds.parameters()) - sum(p.numel() for p in without.parameters())
    assert diff == DS_HEADS_14
    assert not any(k.startswith("heads.1") for k in without.state_dict())


def test_registry_names_and_builder_contract():
    assert {"mednext", "mednext_S", "mednext_B", "mednext_M", "mednext_L"} <= set(NETWORKS.names())
    net = build_network("mednext", in_channels=2, num_classes=3, variant="B", kernel_size=3,
                        deep_supervision=True, dim=3, checkpointing=None, n_channels=4)
    assert net.arch.exp_r == (2, 3, 4, 4, 4, 4, 4, 3, 2) and net.arch.n_channels == 4
    assert net.deep_supervision and not net.checkpointing
    assert build_network("mednext_M", in_channels=1, num_classes=2, n_channels=4).checkpointing
    assert not build_network("mednext_L", in_channels=1, num_classes=2, n_channels=4, checkpointing=False).checkpointing
    assert build_network("mednext_S", in_channels=1, num_classes=2, dim="2d", n_channels=4).arch.dim == 2


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Unknown MedNeXt variant"):
        create_mednext("XL", 1, 2)
    with pytest.raises(TypeError, match="unknown arguments"):
        create_mednext("S", 1, 2, n_chanels=4)
    with pytest.raises(ValueError, match="dim must be 2 or 3"):
        create_mednext("S", 1, 2, dim=4)
    with pytest.raises(ValueError, match="norm"):
        create_mednext("S", 1, 2, norm="batch")
    with pytest.raises(ValueError, match="9 entries"):
        create_mednext("S", 1, 2, exp_r=(2, 2))
    with pytest.raises(ValueError, match="odd"):
        create_mednext("S", 1, 2, kernel_size=4)
