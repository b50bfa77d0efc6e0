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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from mrisr.degrade.step import ResamplingStep

if TYPE_CHECKING:
    import numpy as np

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


def _taps(n_in: int, n_out: int, kernel: str, antialias: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Unreflected input indices (int64, ``(n_out, taps)``) and float64 weights (rows sum to 1)."""
    scale = n_in / n_out
    centre = (torch.arange(n_out, dtype=torch.float64) + 0.5) * scale - 0.5
    if kernel == "nearest":
        idx = torch.floor(centre + 0.5).to(torch.int64).clamp(0, n_in - 1)[:, None]
        return idx, torch.ones(idx.shape, dtype=torch.float64)
    if kernel not in _KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose from {', '.join(KERNELS)}")
    func, support = _KERNELS[kernel]
    stretch = scale if (antialias and scale > 1.0) else 1.0
    support *= stretch
    taps = math.ceil(2.0 * support) + 1
    left = torch.floor(centre - support).to(torch.int64) + 1
    raw = left[:, None] + torch.arange(taps)[None, :]
    w = func((raw.to(torch.float64) - centre[:, None]) / stretch)
    return raw, w / w.sum(dim=1, keepdim=True)


def resample_weights(
    n_in: int, n_out: int, kernel: str, antialias: bool = True, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Taps and weights of one axis: ``out[j] = sum_t w[j, t] * in[idx[j, t]]``.

    Returns:
        ``idx`` (int64, ``(n_out, taps)``, already reflected into ``[0, n_in)``) and ``w`` (``dtype``, same
        shape, rows summing to 1).
    """
    raw, w = _taps(n_in, n_out, kernel, antialias)
    return symmetric_index(raw, n_in), w.to(dtype)


def _resample_periodic(x: torch.Tensor, dim: int, n_out: int, raw: torch.Tensor, w: torch.Tensor) -> torch.Tensor | None:
    """Integer ratios: weights repeat with the output phase, so use strided slices (no big gather).

    For ``n_out = f * n_in`` output ``m * f + p`` reads input ``raw[p] + m``; for ``n_in = f * n_out`` output
    ``m`` reads ``raw[0] + m * f``. Returns ``None`` when the ratio is not an integer or the padding would
    exceed the input (tiny inputs), and the caller gathers instead.
    """
    n_in = x.shape[dim]
    if n_out % n_in == 0:
        period, stride = n_out // n_in, 1
    elif n_in % n_out == 0:
        period, stride = 1, n_in // n_out
    else:
        return None
    lo = max(0, -int(raw.min()))
    hi = max(0, int(raw.max()) - (n_in - 1))
    if lo > n_in or hi > n_in:
        return None
    parts = [x.narrow(dim, 0, lo).flip(dim)] if lo else []
    parts += [x] + ([x.narrow(dim, n_in - hi, hi).flip(dim)] if hi else [])
    xp = torch.cat(parts, dim=dim) if len(parts) > 1 else x
    count = n_out // period
    phases = []
    for p in range(period):
        acc = None
        for t in range(raw.shape[1]):
            wt = float(w[p, t])
            if wt == 0.0:
                continue
            start = int(raw[p, t]) + lo
            view = xp.narrow(dim, start, (count - 1) * stride + 1)
            if stride > 1:
                sl = [slice(None)] * x.ndim
                sl[dim] = slice(None, None, stride)
                view = view[tuple(sl)]
            acc = view * wt if acc is None else acc + view * wt
        assert acc is not None
        phases.append(acc)
    if period == 1:
        return phases[0]
    shape = list(x.shape)
    shape[dim] = n_out
    return torch.stack(phases, dim=dim + 1).reshape(shape)


def resample_axis(x: torch.Tensor, dim: int, n_out: int, kernel: str, antialias: bool = True) -> torch.Tensor:
    """Resize ``x`` along ``dim`` to ``n_out`` samples (same field of view) with a separable kernel."""
    dim = dim % x.ndim
    n_in = x.shape[dim]
    if n_in == n_out:
        return x
    raw, w = _taps(n_in, n_out, kernel, antialias)
    fast = _resample_periodic(x, dim, n_out, raw, w)
    if fast is not None:
        return fast
    idx, w = symmetric_index(raw, n_in).to(x.device), w.to(dtype=x.dtype, device=x.device)
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


@dataclass(frozen=True)
class BicubicStep(ResamplingStep):
    """``bicubic:scale=4``: anti-aliased bicubic downscaling along ``axes`` (MATLAB ``imresize``)."""

    method: ClassVar[str] = "bicubic"

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator,
              signal: float | None = None) -> torch.Tensor:
        dims = [a + 2 for a in params["axes"]]
        for d in dims:
            if t.shape[d] % params["scale"]:
                raise ValueError(f"size {t.shape[d]} is not divisible by scale {params['scale']}")
        return resize(t, [t.shape[d] // params["scale"] for d in dims], dims, "cubic", antialias=True)
