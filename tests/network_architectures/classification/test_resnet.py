import torch

from mednext_fw.network_architectures.classification import count_parameters
from mednext_fw.network_architectures.classification.resnet import ResNet18Layer1


def test_counts_frozen_and_shape():
    m = ResNet18Layer1(3)
    assert count_parameters(m) == 157_504
    assert count_parameters(m, trainable_only=True) == 0
    assert m.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 64)
