"""What every generator shares: input checks, context channels, residual over a baseline, data consistency.

A generator maps ``(N, C_in, *lr)`` to ``(N, 1, *(lr * factors))``. Its ``geometry`` says which axes the
factors refine, so that inference and model files never guess it from the factors:

* ``"isotropic"``: every spatial dim by ``scale`` (a 2D network: both in-plane axes of each slice; a 3D
  network: all three axes);
* ``"through_plane"``: 3D networks only, the last tensor dim by ``scale`` and the others kept (the scan's
  slice axis, which inference moves last).

``C_in = 1 + 2 * context_slices``:
the centre channel is the slice being upscaled, the others are its neighbours (``context`` channels,
ordered from one side to the other). Subclasses implement :meth:`SRGenerator.reconstruct` (the network
proper); :meth:`SRGenerator.forward` then optionally

* adds a baseline upsampling of the centre channel (``residual="bicubic"``, ``"zerofill"``, ...), so the
  network only predicts what interpolation misses, and
* ends with a k-space data-consistency step (``data_consistency=True``): the centre of the output's
  spectrum is replaced by the measured low-resolution spectrum, so for k-space-degraded input the
  output never contradicts what was measured.

Both use the physics in :mod:`mrisr.degrade` (``baselines.upscale_tensor`` and
``kspace.data_consistency``); nothing is re-implemented here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mrisr.degrade.baselines import BASELINES

#: The values of :attr:`SRGenerator.geometry` (see the module docstring).
GEOMETRIES: tuple[str, ...] = ("isotropic", "through_plane")


def baseline_upsample(x: torch.Tensor, factors: Sequence[int], method: str) -> torch.Tensor:
    """``mrisr.degrade.baselines.upscale_tensor`` (identity for factors of 1)."""
    if all(int(f) == 1 for f in factors):
        return x
    from mrisr.degrade.baselines import upscale_tensor

    return upscale_tensor(x, tuple(int(f) for f in factors), method)


def apply_data_consistency(sr: torch.Tensor, lr: torch.Tensor, factors: Sequence[int]) -> torch.Tensor:
    """``mrisr.degrade.kspace.data_consistency`` over the trailing spatial dims of ``sr``/``lr``."""
    from mrisr.degrade.kspace import data_consistency

    d = len(factors)
    return data_consistency(sr, lr, tuple(int(f) for f in factors), tuple(range(-d, 0)))


class SRGenerator(nn.Module):
    """Base class of the super-resolution generators.

    Args:
        spatial_dims: 2 (slices, ``(N, C, H, W)``) or 3 (volumes, ``(N, C, D, H, W)`` in volume order: the
            scan's slice axis last, :mod:`mrisr.data.slices`).
        scale: integer upscaling factor.
        in_channels: ``1 + 2 * context_slices`` (odd).
        residual: name of a baseline upsampling the network output is added to, or ``None``.
        data_consistency: end with the k-space data-consistency step (needs a factor > 1).
        geometry: ``"isotropic"`` or ``"through_plane"`` (3D only); with ``scale`` it gives ``factors``,
            one integer per spatial dim of the input tensor (:func:`factors_for`).
    """

    #: Scales the architecture supports (checked by the contract tests and the registry).
    supported_scales: tuple[int, ...] = (1, 2, 3, 4)
    #: Factor on the network's correction over its ``residual`` baseline (1: as trained). Inference sets it
    #: per scan on a shallow copy (:mod:`mrisr.infer.calibrate`); it is not a parameter and is never saved.
    residual_gain: float = 1.0

    def __init__(self, spatial_dims: int, scale: int, in_channels: int = 1, residual: str | None = None,
                 data_consistency: bool = False, geometry: str = "isotropic"):
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        factors = factors_for(spatial_dims, scale, geometry)
        if int(scale) not in self.supported_scales:
            raise ValueError(f"{type(self).__name__} supports scales {self.supported_scales}, got {scale}")
        if in_channels < 1 or in_channels % 2 == 0:
            raise ValueError(f"in_channels must be odd (1 + 2 * context slices), got {in_channels}")
        if residual is not None and residual not in BASELINES:
            raise ValueError(f"residual must be one of {BASELINES} or None, got {residual!r}")
        if data_consistency and math.prod(factors) == 1:
            raise ValueError("data_consistency needs an upscaling factor > 1")
        self.spatial_dims = spatial_dims
        self.geometry = geometry
        self.factors = factors
        self.scale = int(scale)
        self.in_channels = in_channels
        self.residual = residual
        self.data_consistency = bool(data_consistency)

    @property
    def context_slices(self) -> int:
        return self.in_channels // 2

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The network proper: ``(N, C_in, *lr) -> (N, 1, *hr)``."""
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> None:
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            want = "(N, C, H, W)" if self.spatial_dims == 2 else "(N, C, D, H, W)"
            raise ValueError(f"{type(self).__name__} expects {want} with C={self.in_channels}, got {tuple(x.shape)}")

    def centre(self, x: torch.Tensor) -> torch.Tensor:
        """The channel being upscaled, ``(N, 1, *lr)``."""
        c = self.in_channels // 2
        return x[:, c:c + 1]

    def finish(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """What follows :meth:`reconstruct`: ``y`` (its output) times ``residual_gain`` plus the baseline
        upsampling of ``x``'s centre channel, then data consistency with it (each when configured). Inference
        engines that run the network proper elsewhere (ONNX Runtime, tiles) call this on whole slices."""
        if self.residual is not None:
            if self.residual_gain != 1.0:
                y = y * self.residual_gain
            y = y + baseline_upsample(self.centre(x), self.factors, self.residual)
        if self.data_consistency:
            y = apply_data_consistency(y, self.centre(x), self.factors)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.finish(self.reconstruct(x), x)

    def extra_repr(self) -> str:
        return (f"factors={self.factors}, geometry={self.geometry!r}, in_channels={self.in_channels}, "
                f"residual={self.residual!r}, data_consistency={self.data_consistency}")


def factors_for(spatial_dims: int, scale: int, geometry: str = "isotropic") -> tuple[int, ...]:
    """Per-dim factors: ``(s,) * dims`` (isotropic) or ``(1, 1, s)`` (through-plane: last dim only)."""
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
    if int(scale) < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    if geometry == "through_plane":
        if spatial_dims != 3:
            raise ValueError("through-plane (anisotropic) upscaling needs spatial_dims=3")
        return (1, 1, int(scale))
    return (int(scale),) * spatial_dims
