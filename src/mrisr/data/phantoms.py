"""Synthetic MR-like phantoms (no private data needed): used by tests, demos and example data.

The 3D head phantom is a sum of ellipsoids with smooth (raised-cosine) edges, so it has structure at
several scales but is not band-limited; intensities are in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# (centre xyz in [-1, 1], semi-axes xyz, rotation about z in degrees, intensity added)
_ELLIPSOIDS: tuple[tuple[tuple[float, float, float], tuple[float, float, float], float, float], ...] = (
    ((0.0, 0.0, 0.0), (0.72, 0.92, 0.85), 0.0, 0.8),    # head
    ((0.0, -0.02, 0.0), (0.66, 0.86, 0.78), 0.0, -0.5),  # skull/brain boundary
    ((0.22, 0.0, 0.1), (0.11, 0.31, 0.25), -18.0, -0.2),  # ventricle R
    ((-0.22, 0.0, 0.1), (0.16, 0.41, 0.3), 18.0, -0.2),   # ventricle L
    ((0.0, 0.35, 0.2), (0.21, 0.25, 0.2), 0.0, 0.25),
    ((0.0, 0.1, -0.3), (0.046, 0.046, 0.1), 0.0, 0.3),
    ((-0.08, -0.605, 0.0), (0.046, 0.023, 0.05), 0.0, 0.3),
    ((0.06, -0.605, 0.0), (0.023, 0.046, 0.05), 0.0, 0.3),
    ((0.3, -0.4, -0.2), (0.1, 0.06, 0.12), 30.0, 0.35),
    ((-0.35, 0.45, 0.3), (0.05, 0.12, 0.08), -40.0, 0.2),
)


def head_phantom(shape: Sequence[int] = (64, 64, 32), edge: float = 0.03, seed: int | None = None) -> np.ndarray:
    """A 2D or 3D ellipsoid head phantom, float32 in [0, 1].

    Args:
        shape: ``(X, Y)`` or ``(X, Y, Z)`` voxels.
        edge: width of the smooth edge, in units of the half field of view.
        seed: if given, jitters ellipsoid centres, sizes and intensities (another "patient").
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"shape must be 2D or 3D, got {shape}")
    rng = np.random.default_rng(seed) if seed is not None else None
    grids = np.meshgrid(*[np.linspace(-1, 1, n) if n > 1 else np.zeros(1) for n in shape], indexing="ij")
    x, y = grids[0], grids[1]
    z = grids[2] if len(shape) == 3 else np.zeros_like(x)
    out = np.zeros(shape, dtype=np.float64)
    for centre, axes, angle, value in _ELLIPSOIDS:
        c = np.array(centre, dtype=np.float64)
        a = np.array(axes, dtype=np.float64)
        v = value
        if rng is not None:
            c = c + rng.normal(0, 0.02, 3)
            a = a * rng.uniform(0.92, 1.08, 3)
            v = value * rng.uniform(0.85, 1.15)
        t = np.deg2rad(angle)
        xr = (x - c[0]) * np.cos(t) + (y - c[1]) * np.sin(t)
        yr = -(x - c[0]) * np.sin(t) + (y - c[1]) * np.cos(t)
        zr = z - c[2]
        r = np.sqrt((xr / a[0]) ** 2 + (yr / a[1]) ** 2 + (zr / a[2]) ** 2)
        w = np.clip((1.0 + edge - r) / (2 * edge), 0.0, 1.0)
        out += v * (0.5 - 0.5 * np.cos(np.pi * w))
    out = np.clip(out, 0.0, None)
    return (out / max(out.max(), 1e-12)).astype(np.float32)
