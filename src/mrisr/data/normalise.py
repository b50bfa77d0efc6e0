"""Intensity normalisation, written once: ``mrisr prepare``, training and inference all use this module.

A normalisation is *described* by a small mapping (what a prepared folder's manifest and a model file
record, see :func:`check_normalisation`) and *fitted* on one volume at a time (all slices and time
frames together, so slices of a volume stay comparable), giving an :class:`IntensityMap` that maps
scanner units to the network's range and back. ``mrisr prepare`` stores volumes mapped with
``percentile`` (:func:`fit_normalisation` keeps the fitted window for the manifest); training writes
the prepared folder's description into the model file; inference fits that description on the input.

Descriptions:

* ``{"method": "percentile", "low_percentile": 0.5, "high_percentile": 99.5, "clip": true,
  "range": [0, 1]}`` - the volume's percentiles map to ``range`` (the default);
* ``{"method": "minmax", "range": [0, 1]}`` - min and max map to ``range``;
* ``{"method": "fixed", "low": a, "high": b, "clip": false, "range": [0, 1]}`` - fixed intensities;
* ``{"method": "none"}`` - voxel values are fed as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mrisr.errors import ConfigError

DEFAULT_NORMALISATION: dict[str, Any] = {
    "method": "percentile", "low_percentile": 0.5, "high_percentile": 99.5, "clip": True, "range": [0.0, 1.0],
}
NORMALISATION_METHODS = ("percentile", "minmax", "fixed", "none")
# Percentiles of 4M voxels are as good as of 400M and far cheaper: larger volumes are subsampled.
_MAX_SAMPLES = 4_000_000


# ------------------------------------------------------------------------------------------- descriptions
def percentile_normalisation(low_percentile: float, high_percentile: float) -> dict[str, Any]:
    """The description of what ``mrisr prepare`` does: percentiles (0..100) clipped to [0, 1]."""
    return check_normalisation({"method": "percentile", "low_percentile": float(low_percentile),
                                "high_percentile": float(high_percentile), "clip": True, "range": [0.0, 1.0]})


def check_normalisation(norm: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate and complete a normalisation description (``None`` -> the default)."""
    if norm is None:
        return dict(DEFAULT_NORMALISATION)
    if not isinstance(norm, Mapping):
        raise ConfigError(f"normalisation must be a mapping such as {{'method': 'minmax'}}, got {norm!r}")
    try:
        return _check_normalisation(dict(norm))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"normalisation {dict(norm)!r} holds a value that is not a number ({exc})") from None


def _check_normalisation(out: dict[str, Any]) -> dict[str, Any]:
    method = out.get("method")
    if method not in NORMALISATION_METHODS:
        raise ConfigError(f"normalisation method must be one of {NORMALISATION_METHODS}, got {method!r}")
    if method == "none":
        return {"method": "none"}
    rng = out.setdefault("range", [0.0, 1.0])
    if not (isinstance(rng, list | tuple) and len(rng) == 2 and float(rng[1]) > float(rng[0])):
        raise ConfigError(f"normalisation range must be [low, high] with high > low, got {rng!r}")
    out["range"] = [float(rng[0]), float(rng[1])]
    if method == "percentile":
        lo = float(out.setdefault("low_percentile", DEFAULT_NORMALISATION["low_percentile"]))
        hi = float(out.setdefault("high_percentile", DEFAULT_NORMALISATION["high_percentile"]))
        if not 0.0 <= lo < hi <= 100.0:
            raise ConfigError(f"normalisation percentiles need 0 <= low < high <= 100, got {lo}, {hi}")
        out.setdefault("clip", True)
    elif method == "fixed":
        if "low" not in out or "high" not in out or not float(out["high"]) > float(out["low"]):
            raise ConfigError("normalisation method 'fixed' needs numbers low < high")
        out.setdefault("clip", False)
    else:
        out.setdefault("clip", False)
    return out


# ------------------------------------------------------------------------------------------- fitting
def _window(data: np.ndarray, method: str, low_percentile: float = 0.0,
            high_percentile: float = 100.0) -> tuple[float, float]:
    """The intensities (input units) that map to the range's ends: percentiles or min/max of the whole
    volume (NaNs ignored). A constant volume gets ``high = low + 1``, so it maps to 0 instead of
    dividing by zero."""
    flat = np.asarray(data, dtype=np.float32).ravel()
    if flat.size > _MAX_SAMPLES:
        flat = flat[:: flat.size // _MAX_SAMPLES + 1]
    if method == "minmax":
        lo, hi = float(np.nanmin(flat)), float(np.nanmax(flat))
    else:
        lo, hi = (float(v) for v in np.nanpercentile(flat, [low_percentile, high_percentile]))
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


@dataclass(frozen=True)
class IntensityMap:
    """``y = (x - low) / (high - low)``, optionally clipped to [0, 1], then mapped to ``range``
    (``[out_low, out_high]``); ``low``/``high`` in input (scanner) units."""

    low: float
    high: float
    clip: bool
    out_low: float = 0.0
    out_high: float = 1.0
    identity: bool = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Input units -> the network's range (float32, same shape)."""
        if self.identity:
            return np.asarray(x, dtype=np.float32)
        y = (np.asarray(x, dtype=np.float32) - np.float32(self.low)) / np.float32(self.high - self.low)
        if self.clip:
            y = np.clip(y, 0.0, 1.0, out=y)
        if (self.out_low, self.out_high) == (0.0, 1.0):
            return y
        return (y * np.float32(self.out_high - self.out_low) + np.float32(self.out_low)).astype(np.float32)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """The network's range -> input units (inside the clipped window; float32, same shape)."""
        if self.identity:
            return np.asarray(y, dtype=np.float32)
        u = np.asarray(y, dtype=np.float32)
        if (self.out_low, self.out_high) != (0.0, 1.0):
            u = (u - np.float32(self.out_low)) / np.float32(self.out_high - self.out_low)
        return (u * np.float32(self.high - self.low) + np.float32(self.low)).astype(np.float32)


def fit_intensity_map(data: np.ndarray, normalisation: Mapping[str, Any] | None) -> IntensityMap:
    """The per-volume intensity mapping that a ``normalisation`` description gives for ``data`` (any
    shape, all frames together); ``None`` is the default description."""
    norm = check_normalisation(normalisation)
    method = norm["method"]
    if method == "none":
        return IntensityMap(0.0, 1.0, False, identity=True)
    out_lo, out_hi = norm["range"]
    if method == "fixed":
        lo, hi = float(norm["low"]), float(norm["high"])
    else:
        lo, hi = _window(data, method, norm.get("low_percentile", 0.0), norm.get("high_percentile", 100.0))
    return IntensityMap(lo, hi, bool(norm.get("clip", False)), float(out_lo), float(out_hi))


# ------------------------------------------------------------------------------------------- prepared volumes
@dataclass(frozen=True)
class Normalisation:
    """The percentile window fitted on one prepared volume (kept in its manifest record):
    ``out = clip((x - low) / (high - low), 0, 1)``.

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

    @property
    def intensity_map(self) -> IntensityMap:
        return IntensityMap(self.low, self.high, clip=True)


def fit_normalisation(data: np.ndarray, low_percentile: float = 0.5, high_percentile: float = 99.5) -> Normalisation:
    """Percentiles of a whole volume (any shape; NaNs ignored); see :func:`_window`."""
    if not 0.0 <= low_percentile < high_percentile <= 100.0:
        raise ValueError(f"need 0 <= low < high <= 100, got percentiles {low_percentile}, {high_percentile}")
    lo, hi = _window(data, "percentile", low_percentile, high_percentile)
    return Normalisation(float(low_percentile), float(high_percentile), lo, hi)


def apply_normalisation(data: np.ndarray, norm: Normalisation) -> np.ndarray:
    """Map ``data`` to float32 in [0, 1] with ``norm``."""
    return norm.intensity_map.forward(data)


def denormalise(data: np.ndarray, norm: Normalisation) -> np.ndarray:
    """Inverse of :func:`apply_normalisation` (inside the clipped range): back to scanner units."""
    return norm.intensity_map.inverse(data)
