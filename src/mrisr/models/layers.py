"""Dimension-generic building blocks: one factory for 2D and 3D convolutions, norms, activations, upsamplers.

Every network in :mod:`mrisr.models` is written once against these helpers, with ``spatial_dims`` 2 or 3,
so 2D and 3D variants share code and the FLOP counter sees ordinary ``nn.Conv2d``/``nn.Conv3d`` layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "NearestConvUpsampler",
    "PixelShuffleND",
    "SubPixelUpsampler",
    "activation",
    "conv",
    "factor_steps",
    "norm",
]


def _check_dims(spatial_dims: int) -> int:
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    return spatial_dims


def conv(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    bias: bool = True,
) -> nn.Module:
    """``nn.Conv2d`` or ``nn.Conv3d`` with "same" padding (odd kernels)."""
    cls = nn.Conv2d if _check_dims(spatial_dims) == 2 else nn.Conv3d
    return cls(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)


def norm(kind: str | None, spatial_dims: int, channels: int) -> nn.Module:
    """Normalisation layer by name: ``"batch"``, ``"instance"``, ``"layer"`` (over C and space), ``None``/"none"."""
    _check_dims(spatial_dims)
    if kind in (None, "none"):
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels) if spatial_dims == 2 else nn.BatchNorm3d(channels)
    if kind == "instance":
        return (nn.InstanceNorm2d if spatial_dims == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if kind == "layer":
        # LayerNorm over (C, *spatial) with a per-channel affine: GroupNorm with a single group. Independent of
        # the batch, as WGAN-GP critics need, and of the input size.
        return nn.GroupNorm(1, channels)
    raise ValueError(f"unknown norm {kind!r} (batch, instance, layer, none)")


def activation(name: str | None, channels: int = 1, negative_slope: float = 0.2) -> nn.Module:
    """Activation by name: relu, lrelu, prelu, elu, tanh, sigmoid, none."""
    if name in (None, "none", "identity"):
        return nn.Identity()
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name in ("lrelu", "leaky_relu"):
        return nn.LeakyReLU(negative_slope, inplace=True)
    if name == "prelu":
        return nn.PReLU(channels)
    if name == "elu":
        return nn.ELU(inplace=True)
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"unknown activation {name!r}")


def factor_steps(factor: int) -> list[int]:
    """Split an integer upscaling factor into prime steps (4 -> [2, 2], 6 -> [2, 3], 1 -> [])."""
    if factor < 1 or int(factor) != factor:
        raise ValueError(f"upscaling factors must be positive integers, got {factor}")
    steps, n, p = [], int(factor), 2
    while n > 1:
        while n % p == 0:
            steps.append(p)
            n //= p
        p += 1
    return steps


def _stage_factors(factors: Sequence[int]) -> list[tuple[int, ...]]:
    """Per-axis factors -> a list of per-axis stage factors whose products give ``factors``.

    Isotropic ``(4, 4)`` -> ``[(2, 2), (2, 2)]``; anisotropic ``(1, 1, 4)`` -> ``[(1, 1, 2), (1, 1, 2)]``;
    ``(2, 2, 4)`` -> ``[(2, 2, 2), (1, 1, 2)]``.
    """
    per_axis = [factor_steps(f) for f in factors]
    n = max((len(s) for s in per_axis), default=0)
    return [tuple(s[i] if i < len(s) else 1 for s in per_axis) for i in range(n)]


class PixelShuffleND(nn.Module):
    """Sub-pixel rearrangement for any number of spatial dims with per-axis factors.

    ``(N, C * prod(f), *S) -> (N, C, *(S * f))``; for 2D with equal factors identical to ``nn.PixelShuffle``.
    """

    def __init__(self, factors: Sequence[int]):
        super().__init__()
        self.factors = tuple(int(f) for f in factors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.factors
        d = len(f)
        n, c, *spatial = x.shape
        r = math.prod(f)
        if len(spatial) != d or c % r:
            raise ValueError(f"cannot pixel-shuffle {tuple(x.shape)} by {f}")
        x = x.reshape(n, c // r, *f, *spatial)
        # (N, C, f1..fd, s1..sd) -> (N, C, s1, f1, s2, f2, ...)
        order = [0, 1] + [i for a in range(d) for i in (2 + d + a, 2 + a)]
        x = x.permute(*order)
        return x.reshape(n, c // r, *(s * k for s, k in zip(spatial, f, strict=True)))

    def extra_repr(self) -> str:
        return f"factors={self.factors}"


class SubPixelUpsampler(nn.Sequential):
    """Learned upsampling by conv + pixel shuffle (Shi et al., as in SRResNet), one stage per prime factor.

    Args:
        spatial_dims: 2 or 3.
        channels: feature channels in and out.
        factors: per-axis integer factors (``(2, 2)``, ``(1, 1, 3)``, ...).
        act: activation after each stage (SRResNet: PReLU).
        kernel_size: of the convolution before each shuffle.
    """

    def __init__(self, spatial_dims: int, channels: int, factors: Sequence[int], act: str | None = "prelu",
                 kernel_size: int = 3):
        layers: list[nn.Module] = []
        for stage in _stage_factors(factors):
            layers += [
                conv(spatial_dims, channels, channels * math.prod(stage), kernel_size),
                PixelShuffleND(stage),
                activation(act, channels),
            ]
        super().__init__(*layers)


class _NearestUp(nn.Module):
    def __init__(self, factors: Sequence[int]):
        super().__init__()
        self.factors = tuple(float(f) for f in factors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.factors, mode="nearest")

    def extra_repr(self) -> str:
        return f"factors={self.factors}"


class NearestConvUpsampler(nn.Sequential):
    """Nearest-neighbour upsampling followed by conv + activation per prime factor (ESRGAN's upsampler)."""

    def __init__(self, spatial_dims: int, channels: int, factors: Sequence[int], act: str | None = "lrelu"):
        layers: list[nn.Module] = []
        for stage in _stage_factors(factors):
            layers += [_NearestUp(stage), conv(spatial_dims, channels, channels, 3), activation(act, channels)]
        super().__init__(*layers)
