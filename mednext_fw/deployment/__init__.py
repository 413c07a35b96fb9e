"""Shipping a trained model: export to one zip with a manifest, install it elsewhere, open it for
prediction (folder or zip). ONNX graphs and the runtimes that run them live in
``mednext_fw.inference.backends``."""
from mednext_fw.deployment.export import export_model
from mednext_fw.deployment.install import exported_checkpoint, install_model, open_model
from mednext_fw.deployment.manifest import DeploymentError, Manifest

__all__ = ["DeploymentError", "Manifest", "export_model", "exported_checkpoint", "install_model", "open_model"]
