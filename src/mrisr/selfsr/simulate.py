"""The thick-slice acquisition, simulated along one fine in-plane axis (SMORE's training pairs).

A scan with fine in-plane voxels and thick slices shows, in its in-plane axes, what the anatomy looks like at
fine resolution. Degrading an in-plane axis the way the slices were acquired gives pairs
``(simulated thick-slice profile, fine truth)`` whose inverse is the missing through-plane resolution.

Along the degraded axis (``n`` fine voxels of spacing ``d`` mm), a slice stack of spacing ``S`` mm and profile
FWHM ``T`` mm (``T = S - gap``) has ``ratio = S / d`` fine voxels per slice, usually not an integer. The
stack holds ``n_lr = floor(n / ratio)`` slices and covers ``L = round(n_lr * ratio)`` fine voxels (the crop of the
fine axis that is simulated), so that the cubic interpolation back onto the fine grid is the same operator as
at inference: :func:`mrisr.degrade.resample.resample_axis` from ``n_lr`` to ``L`` samples (same field of view,
coarse slice ``m`` centred at fine index ``(m + 0.5) * L / n_lr - 0.5``, the convention of
:func:`mrisr.io.geometry.rescaled_affine`). Each coarse slice is the profile-weighted mean of the fine voxels,
weights = the profile's integral over each fine voxel's extent ``[j - 0.5, j + 0.5]`` (as
:func:`mrisr.degrade.slice_profile.slice_weights`, which needs an integer ratio; this is its generalisation to
any ratio and is tested against it).

Everything along the axis is linear, so the whole simulation is one ``(L, L)`` matrix
``interpolation @ profile`` applied by a matrix product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mrisr.degrade.resample import resample_axis
from mrisr.degrade.slice_profile import PROFILES


@dataclass(frozen=True)
class AxisSimulation:
    """The simulation along one fine axis of ``n`` voxels.

    Attributes:
        n: fine voxels on the axis.
        start: first fine voxel of the simulated crop (the crop is centred).
        length: ``L``, fine voxels covered by the simulated stack (``start + L <= n``).
        n_lr: coarse slices of the stack.
        thickness: profile FWHM (gaussian) or width (rect) in fine voxels.
        profile: ``"gaussian"`` or ``"rect"``.
        operator: ``(L, L)`` float64 matrix: fine crop -> thick slices -> cubic back onto the fine crop.
    """

    n: int
    start: int
    length: int
    n_lr: int
    thickness: float
    profile: str
    operator: torch.Tensor

    @property
    def ratio(self) -> float:
        """Fine voxels per coarse slice actually simulated (``L / n_lr``)."""
        return self.length / self.n_lr


def profile_matrix(n_lr: int, length: int, thickness: float, profile: str = "gaussian") -> torch.Tensor:
    """``(n_lr, length)`` float64; row ``m`` holds coarse slice ``m``'s weights on the fine voxels (sum 1).

    Coarse slice ``m`` is centred at fine index ``(m + 0.5) * length / n_lr - 0.5``; ``thickness`` is in fine
    voxels (Gaussian FWHM or box width). Weight falling outside ``[-0.5, length - 0.5]`` is dropped and the rest
    renormalised.
    """
    if n_lr < 1 or length < n_lr:
        raise ValueError(f"need 1 <= n_lr <= length, got n_lr={n_lr}, length={length}")
    if not thickness > 0:
        raise ValueError(f"slice thickness must be positive, got {thickness}")
    centres = (torch.arange(n_lr, dtype=torch.float64) + 0.5) * (length / n_lr) - 0.5
    lo = torch.arange(length, dtype=torch.float64) - 0.5
    rel_lo = lo[None, :] - centres[:, None]
    rel_hi = rel_lo + 1.0
    if profile == "gaussian":
        sigma = thickness / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        scale = sigma * math.sqrt(2.0)
        w = 0.5 * (torch.erf(rel_hi / scale) - torch.erf(rel_lo / scale))
    elif profile == "rect":
        half = thickness / 2.0
        w = (rel_hi.clamp(max=half) - rel_lo.clamp(min=-half)).clamp(min=0.0)
    else:
        raise ValueError(f"unknown slice profile {profile!r}; choose from {', '.join(PROFILES)}")
    total = w.sum(dim=1, keepdim=True)
    if bool((total <= 0).any()):
        raise ValueError(f"a slice of thickness {thickness:g} voxels covers no fine voxel")
    return w / total


def interpolation_matrix(n_lr: int, length: int) -> torch.Tensor:
    """``(length, n_lr)`` float64: the cubic (Keys) interpolation of :func:`resample_axis` as a matrix."""
    return resample_axis(torch.eye(n_lr, dtype=torch.float64), 0, length, "cubic")


def axis_simulation(n: int, ratio: float, thickness: float, profile: str = "gaussian") -> AxisSimulation:
    """The simulation of slices ``ratio`` fine voxels apart and ``thickness`` fine voxels thick on an axis of ``n``.

    Raises:
        ValueError: ``ratio`` is not above 1, or the axis holds fewer than two slices of the stack.
    """
    if not ratio > 1.0:
        raise ValueError(f"the slice spacing must exceed the fine spacing (ratio {ratio:g})")
    n_lr = math.floor(n / ratio + 1e-9)
    if n_lr < 2:
        raise ValueError(f"an axis of {n} fine voxels holds fewer than 2 slices {ratio:g} voxels apart")
    length = min(n, round(n_lr * ratio))
    op = interpolation_matrix(n_lr, length) @ profile_matrix(n_lr, length, thickness, profile)
    return AxisSimulation(n, (n - length) // 2, length, n_lr, float(thickness), profile, op)


def simulate_axis(x: torch.Tensor, dim: int, sim: AxisSimulation) -> tuple[torch.Tensor, torch.Tensor]:
    """``(degraded, truth)``: ``x`` cropped to ``sim``'s crop along ``dim``, with and without the simulation.

    Both have ``x``'s shape except ``dim``, which becomes ``sim.length``; ``degraded`` is what cubic
    interpolation of the simulated thick slices gives on the fine grid.
    """
    dim = dim % x.ndim
    if x.shape[dim] != sim.n:
        raise ValueError(f"axis {dim} has {x.shape[dim]} voxels, the simulation was built for {sim.n}")
    truth = x.narrow(dim, sim.start, sim.length)
    moved = truth.movedim(dim, -1)
    degraded = (moved @ sim.operator.to(dtype=x.dtype, device=x.device).T).movedim(-1, dim)
    return degraded.contiguous(), truth.contiguous()
