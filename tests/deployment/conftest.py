import pytest

from tests.deployment.trained import train_classifier, train_segmentation_models


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory, shared_data):
    """``{"3d_fullres" | "2d": model folder}``: tiny segmentation models trained on the real heads."""
    return train_segmentation_models(tmp_path_factory.mktemp("trained_seg"), shared_data)


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory, shared_data):
    return train_classifier(tmp_path_factory.mktemp("trained_cls"), shared_data)
