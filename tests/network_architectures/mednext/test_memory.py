import pytest

from mednext_fw.network_architectures.mednext import TopologyError, create_mednext, mednext_arch
from mednext_fw.network_architectures.mednext.memory import estimate_training_memory, parameter_count

ANISO = dict(strides=[[1, 2, 2], [2, 2, 2]], kernel_sizes=[[1, 3, 3], [3, 3, 3], [3, 3, 3]])


@pytest.mark.parametrize("kw", [{}, ANISO])
def test_parameter_count_is_exact(kw):
    arch = mednext_arch("B", 1, 3, deep_supervision=True, n_channels=8, **kw)
    net = create_mednext("B", 1, 3, deep_supervision=True, n_channels=8, **kw)
    assert parameter_count(arch) == sum(p.numel() for p in net.parameters())


def test_estimate_structure():
    net = create_mednext("S", 1, 2, deep_supervision=True, n_channels=8, **ANISO)
    one, two = net.training_memory([8, 32, 32], 1, "fp32"), net.training_memory([8, 32, 32], 2, "fp32")
    assert two.weights == one.weights and two.activations == 2 * one.activations
    assert net.training_memory([8, 32, 32], 1, "fp16").activations == one.activations / 2
    assert net.training_memory([8, 32, 32], 1, "fp32", checkpointing=True).activations < one.activations / 2
    assert one.growth == one.total - one.weights
    assert net.training_memory([8, 64, 32], 1, "fp32").activations == pytest.approx(2 * one.activations, rel=0.01)
    with pytest.raises(TopologyError, match="not a multiple of 4"):
        net.training_memory([8, 30, 32], 1)
    with pytest.raises(ValueError, match="precision"):
        estimate_training_memory(net.arch, [8, 32, 32], 1, "fp8")
