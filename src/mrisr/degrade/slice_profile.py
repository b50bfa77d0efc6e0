"""Thick slices: a slice-selection profile along one axis, then one slice every ``scale`` voxels.

The coarse slice ``m`` is centred at fine index ``m * scale + (scale - 1) / 2`` (the grid of
:func:`mrisr.io.geometry.rescaled_affine`: the slice stack covers the same field of view) and is the
profile-weighted average of the fine voxels, each weighted by the integral of the profile over the voxel's
extent ``[j - 0.5, j + 0.5]``:

* ``gaussian``: a Gaussian whose FWHM is the slice thickness (tails reach neighbouring slices);
* ``rect``: a box of width ``thickness`` (exact partial-volume overlap).

Thickness is in fine voxels; with slice spacing ``scale`` and a gap between slices, ``thickness = scale - gap``.
Near the ends of the stack, profile weight falling outside the field of view is dropped and the rest
renormalised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from mrisr.degrade.grid import normalise_axes
from mrisr.degrade.step import (
    SCALE,
    Step,
    Uniform,
    check_bounds,
    draw_value,
    number,
    one_of,
    parse_one_axis,
    reads,
)
from mrisr.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

PROFILES = ("gaussian", "rect")


def slice_weights(n_in: int, scale: int, thickness: float, profile: str = "gaussian") -> torch.Tensor:
    """``(n_in // scale, n_in)`` float64 matrix; row ``m`` holds the weights of coarse slice ``m``."""
    if n_in % scale:
        raise ValueError(f"{n_in} slices are not divisible by the slice spacing {scale}")
    if thickness <= 0:
        raise ValueError(f"slice thickness must be positive, got {thickness}")
    centres = torch.arange(n_in // scale, dtype=torch.float64) * scale + (scale - 1) / 2.0
    lo = torch.arange(n_in, dtype=torch.float64) - 0.5
    hi = lo + 1.0
    rel_lo = lo[None, :] - centres[:, None]
    rel_hi = hi[None, :] - centres[:, None]
    if profile == "gaussian":
        sigma = thickness / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        cdf = lambda t: 0.5 * (1.0 + torch.erf(t / (sigma * math.sqrt(2.0))))  # noqa: E731
        w = cdf(rel_hi) - cdf(rel_lo)
    elif profile == "rect":
        half = thickness / 2.0
        w = (torch.minimum(rel_hi, torch.tensor(half)) - torch.maximum(rel_lo, torch.tensor(-half))).clamp(min=0.0)
    else:
        raise ValueError(f"unknown slice profile {profile!r}; choose from {', '.join(PROFILES)}")
    return w / w.sum(dim=1, keepdim=True)


def thick_slices(x: torch.Tensor, scale: int, dim: int, thickness: float | None = None, profile: str = "gaussian") -> torch.Tensor:
    """Simulate slices ``thickness`` fine voxels thick (default ``scale``), spaced ``scale`` apart, along ``dim``."""
    dim = dim % x.ndim
    w = slice_weights(x.shape[dim], scale, float(scale if thickness is None else thickness), profile)
    moved = x.movedim(dim, -1)
    return (moved @ w.to(dtype=x.dtype, device=x.device).T).movedim(-1, dim)


@dataclass(frozen=True)
class SliceStep(Step):
    """``slice:scale=3,axis=2,gap=0.5,profile=rect``: :func:`thick_slices` along ``axis`` (default: the last).

    ``thickness`` and ``gap`` are in fine voxels; give at most one (``thickness = scale - gap``, default
    ``scale``).
    """

    method: ClassVar[str] = "slice"
    scale: int = field(metadata=SCALE)
    axis: int | None = field(default=None, metadata=reads(parse_one_axis))
    thickness: float | Uniform | None = field(default=None, metadata=reads(number(above=0.0)))
    gap: float | Uniform | None = field(default=None, metadata=reads(number(at_least=0.0)))
    profile: str = field(default="gaussian", metadata=reads(one_of(PROFILES, random=False)))

    def check(self) -> None:
        if self.thickness is not None and self.gap is not None:
            raise ConfigError("slice: give thickness or gap, not both (thickness = scale - gap)")
        # thickness = scale - gap must stay positive
        check_bounds(f"{self.method}.gap", self.gap, 0.0, strict=False, high=float(self.scale))

    def _axis(self, ndim: int) -> int:
        return normalise_axes([ndim - 1 if self.axis is None else self.axis], ndim)[0]

    def factors(self, ndim: int) -> tuple[int, ...]:
        ax = self._axis(ndim)
        return tuple(self.scale if a == ax else 1 for a in range(ndim))

    def draw(self, rng: np.random.Generator, ndim: int) -> dict[str, Any]:
        gap = draw_value(self.gap, rng)
        thickness = draw_value(self.thickness, rng)
        if thickness is None:
            thickness = self.scale - (gap or 0.0)
        if thickness <= 0:
            raise ConfigError(f"slice: thickness {thickness:g} must be positive (gap {gap} >= scale {self.scale}?)")
        return {
            "method": self.method, "scale": self.scale, "axis": self._axis(ndim),
            "thickness": float(thickness), "gap": None if gap is None else float(gap), "profile": self.profile,
        }

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator,
              signal: float | None = None) -> torch.Tensor:
        return thick_slices(t, params["scale"], params["axis"] + 2, params["thickness"], params["profile"])

    def in_mm(self, params: dict[str, Any], spacing: Sequence[float]) -> dict[str, float]:
        """The slice profile's thickness in mm (DICOM SliceThickness for writers)."""
        return {"thickness_mm": float(params["thickness"]) * spacing[int(params["axis"])]}
