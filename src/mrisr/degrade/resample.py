"""Separable kernel resampling (nearest, linear, cubic, Lanczos) in torch, on field-of-view-keeping grids.

One resampler serves the interpolation baselines (upscaling) and the bicubic degradation (anti-aliased
downscaling, as MATLAB's ``imresize``). Output sample ``j`` of an axis resized from ``N`` to ``M`` samples
sits at input index ``(j + 0.5) * N / M - 0.5`` (:func:`mrisr.io.geometry.rescaled_affine`, PyTorch's
``align_corners=False``). Borders are half-sample symmetric (scipy's ``"reflect"``, MATLAB's
``"symmetric"``). When downscaling with ``antialias=True`` the kernel is stretched by ``N / M``.

Kernels: ``nearest``; ``linear`` (triangle); ``cubic`` (Keys, a = -0.5, as MATLAB and Pillow);
``lanczos`` (a = 3, weights normalised to sum to 1 as Pillow does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

KERNELS = ("nearest", "linear", "cubic", "lanczos")

KEYS_A = -0.5
LANCZOS_A = 3


def _linear(t: torch.Tensor) -> torch.Tensor:
    return (1.0 - t.abs()).clamp(min=0.0)


def _cubic(t: torch.Tensor) -> torch.Tensor:
    a = KEYS_A
    t = t.abs()
    t2, t3 = t * t, t * t * t
    near = (a + 2.0) * t3 - (a + 3.0) * t2 + 1.0
    far = a * t3 - 5.0 * a * t2 + 8.0 * a * t - 4.0 * a
    return torch.where(t <= 1.0, near, torch.where(t < 2.0, far, torch.zeros_like(t)))


def _lanczos(t: torch.Tensor) -> torch.Tensor:
    a = LANCZOS_A
    out = torch.sinc(t) * torch.sinc(t / a)
    return torch.where(t.abs() < a, out, torch.zeros_like(t))


_KERNELS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], float]] = {
    "linear": (_linear, 1.0),
    "cubic": (_cubic, 2.0),
    "lanczos": (_lanczos, float(LANCZOS_A)),
}


def symmetric_index(i: torch.Tensor, n: int) -> torch.Tensor:
    """Map any integer index onto ``[0, n)`` by half-sample symmetric reflection (period ``2 n``)."""
    i = torch.remainder(i, 2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def resample_weights(
    n_in: int, n_out: int, kernel: str, antialias: bool = True, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Taps and weights of one axis: ``out[j] = sum_t w[j, t] * in[idx[j, t]]``.

    Returns:
        ``idx`` (int64, ``(n_out, taps)``, already reflected into ``[0, n_in)``) and ``w`` (``dtype``, same
        shape, rows summing to 1).
    """
    scale = n_in / n_out
    centre = (torch.arange(n_out, dtype=torch.float64) + 0.5) * scale - 0.5
    if kernel == "nearest":
        idx = torch.floor(centre + 0.5).to(torch.int64).clamp(0, n_in - 1)[:, None]
        return idx, torch.ones(idx.shape, dtype=dtype)
    if kernel not in _KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose from {', '.join(KERNELS)}")
    func, support = _KERNELS[kernel]
    stretch = scale if (antialias and scale > 1.0) else 1.0
    support *= stretch
    taps = math.ceil(2.0 * support) + 1
    left = torch.floor(centre - support).to(torch.int64) + 1
    raw = left[:, None] + torch.arange(taps)[None, :]
    w = func((raw.to(torch.float64) - centre[:, None]) / stretch)
    w = w / w.sum(dim=1, keepdim=True)
    return symmetric_index(raw, n_in), w.to(dtype)


def resample_axis(x: torch.Tensor, dim: int, n_out: int, kernel: str, antialias: bool = True) -> torch.Tensor:
    """Resize ``x`` along ``dim`` to ``n_out`` samples (same field of view) with a separable kernel."""
    dim = dim % x.ndim
    n_in = x.shape[dim]
    if n_in == n_out:
        return x
    idx, w = resample_weights(n_in, n_out, kernel, antialias, dtype=x.dtype)
    idx, w = idx.to(x.device), w.to(x.device)
    taps = idx.shape[1]
    gathered = x.index_select(dim, idx.reshape(-1))
    shape = list(x.shape)
    shape[dim : dim + 1] = [n_out, taps]
    gathered = gathered.reshape(shape)
    wshape = [1] * len(shape)
    wshape[dim], wshape[dim + 1] = n_out, taps
    return (gathered * w.reshape(wshape)).sum(dim=dim + 1)


def resize(
    x: torch.Tensor, sizes: Sequence[int], dims: Sequence[int], kernel: str, antialias: bool = True
) -> torch.Tensor:
    """Resize ``x`` along each of ``dims`` to the matching entry of ``sizes`` (separably, in order)."""
    if len(sizes) != len(dims):
        raise ValueError(f"need one size per dim, got sizes={list(sizes)} dims={list(dims)}")
    for d, n in zip(dims, sizes, strict=True):
        x = resample_axis(x, d, int(n), kernel, antialias)
    return x
