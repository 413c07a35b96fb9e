"""Install mednext_fw.

torch is deliberately left unpinned here: CI and the README install ``torch==2.13.0`` (the local CPU
wheel) first, and any torch >= 2.1 satisfies the package.
"""
from setuptools import find_packages, setup

CONSOLE_SCRIPTS = [
    "mednext_plan_and_preprocess = mednext_fw.cli.plan_and_preprocess:main",
    "mednext_train = mednext_fw.cli.train:main",
    "mednext_predict = mednext_fw.cli.predict:main",
    "mednext_evaluate = mednext_fw.cli.evaluate:main",
    "mednext_convert = mednext_fw.cli.convert:main",
    "mednext_demo = mednext_fw.cli.demo:main",
    "mednext_find_best_configuration = mednext_fw.cli.find_best_configuration:main",
    "mednext_ensemble = mednext_fw.cli.ensemble:main",
    "mednext_apply_postprocessing = mednext_fw.cli.apply_postprocessing:main",
    "mednext_export_model = mednext_fw.cli.export_model:main",
    "mednext_install_model = mednext_fw.cli.install_model:main",
]

# The 2D classifiers ship in the box but are found exactly like third-party plug-ins: through
# these entry-point groups (see mednext_fw/registry.py).
NETWORK_PLUGINS = [
    "xray_moe = mednext_fw.network_architectures.classification.xray_moe:create_xray_moe",
    "hovit = mednext_fw.network_architectures.classification.hovit:create_hovit",
]
TRAINER_PLUGINS = [
    "XrayMoE = mednext_fw.trainers.plugins:XrayMoETrainer",
    "HoViT = mednext_fw.trainers.plugins:HoViTTrainer",
]

setup(
    name="mednext_fw",
    version="0.1.0",
    description="Self-configuring MedNeXt segmentation framework (nnU-Net style) with 2D classifier plug-ins",
    python_requires=">=3.10",
    packages=find_packages(include=["mednext_fw", "mednext_fw.*"]),
    package_data={"mednext_fw.demo": ["data/**/*", "data/*", "ATTRIBUTION.md"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.1",
        "numpy",
        "scipy",
        "SimpleITK",
        "nibabel",
        "batchgenerators",
        "acvl-utils",
        "tqdm",
        "matplotlib",
        "pillow",
    ],
    extras_require={
        # wheel: the out-of-tree plug-in test pip-installs a package without build isolation.
        "test": ["pytest", "pytest-timeout", "monai", "wheel"],
        # CPU runtimes for `mednext_predict --backend` and ONNX export/checks (CPU wheels; beside CPU torch).
        "deploy": ["onnx", "onnxruntime", "openvino", "psutil"],
        # Peers for benchmarks/: they pull a CUDA build of torch, so install them in a separate venv.
        "bench": ["nnunetv2", "timm", "monai", "psutil"],
    },
    entry_points={
        "console_scripts": CONSOLE_SCRIPTS,
        "mednext_fw.networks": NETWORK_PLUGINS,
        "mednext_fw.trainers": TRAINER_PLUGINS,
    },
)
