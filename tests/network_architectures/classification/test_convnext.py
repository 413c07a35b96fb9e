import pytest
import torch

from mednext_fw.network_architectures.classification import count_parameters
from mednext_fw.network_architectures.classification.convnext import ConvNeXtSlice


def test_xxlarge_slice_parameter_counts():
    with torch.device("meta"):
        m = ConvNeXtSlice(3, "xxlarge")
    assert count_parameters(m.stem) == 19_584
    assert count_parameters(m.stages[0]) == 3_605_760
    assert count_parameters(m.stages[1]) == 20_233_728
    assert m.out_features == 768


def test_tiny_slice_counts_and_output():
    m = ConvNeXtSlice(3, "tiny")
    assert count_parameters(m) == 1_235_040
    assert m(torch.randn(2, 3, 64, 64)).shape == (2, 192)


def test_unknown_width_is_rejected():
    with pytest.raises(ValueError, match="Unknown ConvNeXt width"):
        ConvNeXtSlice(3, "huge")
