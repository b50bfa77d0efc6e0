"""Per-volume intensity normalisation: percentile clip to [0, 1], parameters kept for the manifest.

One set of parameters per *volume* (all slices and time frames together), so that slices of a volume
stay comparable with each other and the mapping can be undone (:func:`denormalise`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Normalisation:
    """``out = clip((x - low) / (high - low), 0, 1)``.

    Attributes:
        low_percentile, high_percentile: percentiles (0..100) of the volume's voxels that were used.
        low, high: the intensities (scanner units) those percentiles gave.
    """

    low_percentile: float
    high_percentile: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def fit_normalisation(data: np.ndarray, low_percentile: float = 0.5, high_percentile: float = 99.5) -> Normalisation:
    """Percentiles of a whole volume (any shape; NaNs ignored).

    A constant volume (``high == low``) gets ``high = low + 1`` so that it maps to 0 instead of dividing
    by zero.
    """
    if not 0.0 <= low_percentile < high_percentile <= 100.0:
        raise ValueError(f"need 0 <= low < high <= 100, got percentiles {low_percentile}, {high_percentile}")
    flat = np.asarray(data, dtype=np.float32).ravel()
    # Subsample very large volumes: percentiles of 4M voxels are as good as of 400M and far cheaper.
    if flat.size > 4_000_000:
        flat = flat[:: flat.size // 4_000_000 + 1]
    lo, hi = (float(v) for v in np.nanpercentile(flat, [low_percentile, high_percentile]))
    if not hi > lo:
        hi = lo + 1.0
    return Normalisation(float(low_percentile), float(high_percentile), lo, hi)


def apply_normalisation(data: np.ndarray, norm: Normalisation) -> np.ndarray:
    """Map ``data`` to float32 in [0, 1] with ``norm``."""
    out = (np.asarray(data, dtype=np.float32) - np.float32(norm.low)) / np.float32(norm.high - norm.low)
    return np.clip(out, 0.0, 1.0, out=out)


def denormalise(data: np.ndarray, norm: Normalisation) -> np.ndarray:
    """Inverse of :func:`apply_normalisation` (inside the clipped range): back to scanner units."""
    return np.asarray(data, dtype=np.float32) * np.float32(norm.high - norm.low) + np.float32(norm.low)
