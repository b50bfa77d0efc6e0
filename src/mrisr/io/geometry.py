"""Geometry of resampled grids. Written once; every upscaler and degradation uses it.

A grid of ``n`` voxels of size ``d`` covers the field of view from index ``-0.5`` to ``n - 0.5``. Resampling
an axis by factor ``f`` (``f > 1`` finer) gives ``n * f`` voxels of size ``d / f`` covering the same field
of view, so the first new voxel centre sits at old index ``-0.5 + 0.5 / f``: voxel centres shift by half
the difference of spacings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _factors(factors: float | Sequence[float], ndim: int) -> np.ndarray:
    f = np.asarray([factors] * ndim if np.isscalar(factors) else factors, dtype=np.float64)
    if f.shape != (ndim,):
        raise ValueError(f"need {ndim} scale factors, got {f.tolist()}")
    if np.any(f <= 0):
        raise ValueError(f"scale factors must be positive, got {f.tolist()}")
    return f


def rescaled_affine(affine: np.ndarray, factors: float | Sequence[float]) -> np.ndarray:
    """Affine of the grid resampled by ``factors`` per spatial axis, covering the same field of view.

    Args:
        affine: 4x4 voxel -> world (mm) matrix of the original grid.
        factors: per-axis (i, j, k) scale; > 1 is a finer grid (upsampling), < 1 coarser. A scalar
            applies to all three axes; pass 1 for axes left alone.

    Returns:
        4x4 float64 affine such that new index ``m`` on axis ``a`` maps to the same world point as old
        index ``(m + 0.5) / f_a - 0.5``.
    """
    f = _factors(factors, 3)
    index_map = np.eye(4)
    index_map[:3, :3] = np.diag(1.0 / f)
    index_map[:3, 3] = -0.5 + 0.5 / f
    return np.asarray(affine, dtype=np.float64) @ index_map


def rescaled_shape(shape: Sequence[int], factors: float | Sequence[float]) -> tuple[int, ...]:
    """Spatial shape after resampling by ``factors`` (rounded to the nearest voxel, at least 1)."""
    f = _factors(factors, len(shape))
    return tuple(max(1, round(float(n * s))) for n, s in zip(shape, f, strict=True))


def field_of_view_corners(affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """World positions (mm) of the 8 outer corners of the field of view, shape ``(8, 3)``.

    Corners are at voxel index ``-0.5`` and ``n - 0.5`` (voxel edges, not centres). 2D shapes use
    ``k = 0`` edges at ``-0.5`` and ``0.5``.
    """
    shp = list(shape) + [1] * (3 - len(shape))
    lo = np.full(3, -0.5)
    hi = np.asarray(shp, dtype=np.float64) - 0.5
    corners = np.array([[(hi if b else lo)[a] for a, b in enumerate(bits)] for bits in np.ndindex(2, 2, 2)])
    return corners @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def field_of_view_centre(affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """World position (mm) of the centre of the field of view, shape ``(3,)``."""
    shp = list(shape) + [1] * (3 - len(shape))
    c = (np.asarray(shp, dtype=np.float64) - 1.0) / 2.0
    return np.asarray(affine)[:3, :3] @ c + np.asarray(affine)[:3, 3]
