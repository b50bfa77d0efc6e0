"""Small synthetic cohorts (from mrisr.data.example) shared by the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrisr.data.example import make_example_data


@pytest.fixture(scope="session")
def example_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 pediatric DICOM patients (32x32x4) and 4 cardiac cines (32x32x4x5) plus the bad inputs."""
    root = tmp_path_factory.mktemp("example")
    make_example_data(root, n_patients=4, seed=0, pediatric_shape=(32, 32, 4), cardiac_shape=(32, 32, 4, 5))
    return root
