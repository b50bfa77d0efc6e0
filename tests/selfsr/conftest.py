"""Thick-slice phantoms: an isotropic 1 mm truth and its simulated thick-slice acquisition along axis 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrisr.data.phantoms import head_phantom
from mrisr.degrade.grid import resampled_volume
from mrisr.degrade.slice_profile import thick_slices
from mrisr.io.volume import Volume


def textured_truth(n: int = 40, seed: int = 3) -> np.ndarray:
    """``(n, n, n)`` float32: the head phantom plus smooth isotropic blobs (structure at every orientation)."""
    rng = np.random.default_rng(seed)
    base = head_phantom((n, n, n)).astype(np.float64)
    grid = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), axis=-1).astype(np.float64)
    for _ in range(25):
        c = rng.uniform(0.2 * n, 0.8 * n, 3)
        r = rng.uniform(1.5, 4.0)
        base += rng.uniform(-0.3, 0.3) * np.exp(-((grid - c) ** 2).sum(-1) / (2 * r * r))
    return np.clip(base, 0.0, None).astype(np.float32) * 1000.0


def thick(truth: Volume, scale: int, thickness: float | None = None) -> Volume:
    """``truth`` with Gaussian slices ``thickness`` voxels thick (default ``scale``), ``scale`` apart along axis 2."""
    t = torch.from_numpy(truth.data)[None, None]
    data = thick_slices(t, scale, 4, thickness)[0, 0].numpy()
    return resampled_volume(truth, data, [1, 1, 1 / scale], {"op": "degrade", "method": "slice"})


@pytest.fixture(scope="session")
def truth_volume() -> Volume:
    """40 x 40 x 40 at 1 mm, origin off zero."""
    aff = np.eye(4)
    aff[:3, 3] = (-20.0, 5.0, 12.0)
    return Volume(textured_truth(), aff, meta={"format": "nifti"})


@pytest.fixture(scope="session")
def thick_volume(truth_volume: Volume) -> Volume:
    """``truth_volume`` acquired with 4 mm Gaussian slices (FWHM 4 mm), 4 mm apart: 40 x 40 x 10."""
    return thick(truth_volume, 4)
