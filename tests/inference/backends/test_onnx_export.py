"""ONNX export: the graph ONNX Runtime runs matches torch (<= 1e-4), with dynamic batch and spatial sides;
the 2D classifiers export too."""
import numpy as np
import pytest
import torch

from mednext_fw.inference.backends.onnx_export import ExportError, onnx_bytes, save_onnx
from mednext_fw.network_architectures.registry import build_network

ort = pytest.importorskip("onnxruntime")


def _run(graph: bytes, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


ANISOTROPIC = {"strides": [[1, 2, 2], [1, 2, 2], [2, 2, 2], [2, 2, 2]], "block_counts": [1] * 9,
               "kernel_sizes": [[1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]}


@pytest.mark.parametrize("dim,kwargs", [(3, {}), (3, {"grn": True, "norm": "layer"}), (2, {}), (3, ANISOTROPIC),
                                        (3, {"kernel_size": 5})])
def test_mednext_onnx_matches_torch_on_other_batch_and_sides(dim, kwargs):
    torch.manual_seed(0)
    net = build_network("mednext", variant="S", in_channels=1, num_classes=3, n_channels=4, dim=dim,
                        deep_supervision=True, **{"block_counts": [1] * 9, **kwargs}).eval()
    graph = onnx_bytes(net, (1, 1) + (32,) * dim)
    x = torch.randn((3, 1) + (48,) * (dim - 1) + (16,))  # batch and sides differ from the export's
    net.deep_supervision = False
    with torch.no_grad():
        ref = net(x).numpy()
    assert np.abs(_run(graph, x) - ref).max() <= 1e-4


@pytest.mark.parametrize("name,kwargs", [("xray_moe", {"num_experts": 4, "k": 2}), ("hovit", {"img_size": 32})])
def test_classifiers_export(name, kwargs):
    torch.manual_seed(0)
    net = build_network(name, in_channels=1, num_classes=3, **kwargs).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        ref = net(x).numpy()
    assert np.abs(_run(onnx_bytes(net, (1, 1, 32, 32), dynamic_spatial=False), x) - ref).max() <= 1e-4


def test_save_is_atomic_and_errors_name_the_network(tmp_path):
    class Bad(torch.nn.Module):
        def forward(self, x):
            return torch.linalg.eig(x)[0].real  # no ONNX mapping

    with pytest.raises(ExportError, match="Bad"):
        save_onnx(Bad(), (1, 4, 4), tmp_path / "bad.onnx")
    assert not list(tmp_path.iterdir())
