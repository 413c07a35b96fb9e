"""mednext_fw: a self-configuring MedNeXt segmentation framework in the spirit of nnU-Net."""

__version__ = "0.1.0"
