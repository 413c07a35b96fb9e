"""Source datasets built once per session from the real volumes (tests only read them)."""
from __future__ import annotations

import pytest

from tests.conversion import sources


@pytest.fixture(scope="session")
def btcv_src(shared_data, tmp_path_factory):
    return sources.make_btcv(shared_data, tmp_path_factory.mktemp("btcv_src"))


@pytest.fixture(scope="session")
def msd_src(shared_data, tmp_path_factory):
    return sources.make_msd(shared_data, tmp_path_factory.mktemp("msd_src"))


@pytest.fixture(scope="session")
def folders_src(shared_data, tmp_path_factory):
    return sources.make_folders(shared_data, tmp_path_factory.mktemp("folders_src"))
