"""Shared fixtures: small synthetic volumes (phantoms) with non-trivial geometry."""

from __future__ import annotations

import os

import numpy as np
import pytest

# Keep CPU tests predictable on 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "2")

from mrisr.data.phantoms import head_phantom
from mrisr.io.volume import Volume


def oblique_affine(spacing=(0.9, 1.1, 2.5), origin=(-30.0, 12.5, 40.0), angles=(12.0, -7.0, 25.0)) -> np.ndarray:
    """A rotated (oblique), anisotropic voxel -> RAS affine."""
    ax, ay, az = np.deg2rad(angles)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rz @ ry @ rx @ np.diag(spacing)
    aff[:3, 3] = origin
    return aff


@pytest.fixture
def phantom3d() -> Volume:
    """A 48x40x12 head phantom with an oblique anisotropic affine, intensities in [0, 1000]."""
    return Volume(head_phantom((48, 40, 12)) * 1000.0, oblique_affine(), meta={"format": "nifti"})


@pytest.fixture
def phantom2d() -> Volume:
    """A 64x64 2D phantom slice, 1 mm pixels, intensities in [0, 1]."""
    return Volume(head_phantom((64, 64)), np.eye(4), meta={"format": "npy"})


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
