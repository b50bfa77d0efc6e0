"""k-space truncation (a shorter acquisition), zero-filled (sinc) interpolation and data consistency.

All three work along chosen ``dims`` of a real tensor with any other (batch) dims, in PyTorch, and are
differentiable. They share one scaling and one grid convention so that they compose exactly:

Grid. Along a dim of ``N = n * f`` fine samples, the coarse grid has ``n`` samples that cover the same
field of view (:func:`mrisr.io.geometry.rescaled_affine`): coarse sample ``m`` sits at fine index
``m * f + (f - 1) / 2`` (the centre of its block of ``f`` fine voxels), not at ``m * f``. The half-voxel
shift is applied as a linear phase, so a k-space-degraded image lines up with the reference when it is
upscaled by any baseline (bicubic, linear...) that uses the same geometry.

Spectrum. With the fine spectrum ``X_k = sum_j x_j exp(-2 pi i k j / N)`` (signed ``k``), the
band-limited interpolant is ``x(t) = 1/N sum_k X_k exp(2 pi i k t / N)``. Truncation keeps the
frequencies ``|k| <= n/2`` and samples that interpolant on the coarse grid. For even ``n`` the two fine
bins ``+n/2`` and ``-n/2`` both land on the coarse Nyquist bin (split symmetrically, so a real image
stays real); zero-filling puts half of the coarse Nyquist coefficient into each of them. Hence:

* intensities are comparable between grids: a constant image keeps its value after truncation and after
  zero-fill (the scaling is ``1/f`` resp. ``f`` on top of the unnormalised FFT pair);
* ``kspace_truncate(zerofill_upsample(y)) == y`` for any coarse ``y`` (real data, ``window=None``,
  ``magnitude`` irrelevant for ``y >= 0``), and ``zerofill_upsample(kspace_truncate(x)) == x`` for any
  ``x`` band-limited to the coarse grid (``|k| < n/2``, or the Nyquist pair in the cosine phase that
  zero-filling produces);
* ``data_consistency(sr, lr)`` changes ``sr`` only within the measured band, so that
  ``kspace_truncate(data_consistency(sr, lr), magnitude=False) == lr``.

Window. An optional window (``hamming``, ``tukey``, ``fermi``; separable, equal to 1 at ``k = 0`` so the
mean intensity is kept) multiplies the truncated spectrum against ringing. With a window, the measured
data *is* the windowed one: ``data_consistency`` enforces the un-windowed truncation of its output to
equal ``lr`` (the windowed image), it does not undo the window.

Magnitude. A scanner reconstructs a complex image and stores its magnitude; ``kspace_truncate`` does the
same by default (``magnitude=True``), which turns the negative lobes of Gibbs ringing into positive ones.
For real input without magnitude the result is real to rounding error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from mrisr.degrade.step import Choice, ResamplingStep, one_of, reads

if TYPE_CHECKING:
    import numpy as np

WINDOWS = ("hamming", "tukey", "fermi")

#: Tukey window: fraction of the band that is tapered (cosine), the central rest is flat.
TUKEY_ALPHA = 0.5
#: Fermi window: 1 / (1 + exp((|k| / k_max - radius) / width)), normalised to 1 at k = 0.
FERMI_RADIUS = 0.85
FERMI_WIDTH = 0.04


def _check(x: torch.Tensor, factors: Sequence[int], dims: Sequence[int]) -> list[tuple[int, int]]:
    """Normalised (dim, factor) pairs; raises ValueError for bad factors or indivisible sizes."""
    if len(factors) != len(dims):
        raise ValueError(f"need one factor per dim, got factors={list(factors)} dims={list(dims)}")
    out = []
    seen = set()
    for d, f in zip(dims, factors, strict=True):
        dd = d % x.ndim
        if dd in seen:
            raise ValueError(f"dim {d} given twice")
        seen.add(dd)
        if int(f) != f or f < 1:
            raise ValueError(f"k-space factors must be positive integers, got {f}")
        f = int(f)
        if f > 1:
            out.append((dd, f))
    return out


def _shape_along(v: torch.Tensor, dim: int, ndim: int) -> torch.Tensor:
    shape = [1] * ndim
    shape[dim] = v.shape[0]
    return v.reshape(shape)


def _coarse_freqs(n: int, device: torch.device) -> torch.Tensor:
    """Signed integer frequencies of an n-point DFT in FFT order: 0, 1, ..., -n//2 ... -1."""
    return torch.round(torch.fft.fftfreq(n, device=device, dtype=torch.float64) * n).to(torch.int64)


def _phase(q: torch.Tensor, shift: float, big_n: int, dtype: torch.dtype) -> torch.Tensor:
    """exp(2 pi i q shift / N): evaluates the fine interpolant ``shift`` fine voxels further on."""
    ang = 2.0 * math.pi * q.to(torch.float64) * shift / big_n
    return torch.polar(torch.ones_like(ang), ang).to(dtype)


def window_weights(n: int, window: str | None, device: torch.device | None = None) -> torch.Tensor:
    """Window over the ``n`` coarse frequencies (FFT order), float64, 1 at k = 0; all ones for ``None``."""
    q = _coarse_freqs(n, torch.device("cpu") if device is None else device).to(torch.float64)
    r = q.abs() / (n / 2.0)  # 0 at DC, 1 at the (coarse) Nyquist
    if window is None or window == "none":
        return torch.ones_like(r)
    if window == "hamming":
        return 0.54 + 0.46 * torch.cos(math.pi * r)
    if window == "tukey":
        a = TUKEY_ALPHA
        edge = 1.0 - a
        w = 0.5 * (1.0 + torch.cos(math.pi * (r - edge) / a))
        return torch.where(r <= edge, torch.ones_like(r), w)
    if window == "fermi":
        w = 1.0 / (1.0 + torch.exp((r - FERMI_RADIUS) / FERMI_WIDTH))
        return w / w[0]
    raise ValueError(f"unknown k-space window {window!r}; choose from {', '.join(WINDOWS)} or none")


def _complex_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.complex128 if x.dtype == torch.float64 else torch.complex64


def _truncate_dim(spec: torch.Tensor, dim: int, f: int, window: str | None) -> torch.Tensor:
    """Fine spectrum (unnormalised FFT along ``dim``) -> coarse spectrum, shifted onto the coarse grid."""
    big_n = spec.shape[dim]
    if big_n % f:
        raise ValueError(f"size {big_n} along dim {dim} is not divisible by factor {f}")
    n = big_n // f
    shift = (f - 1) / 2.0
    q = _coarse_freqs(n, spec.device)
    coarse = spec.index_select(dim, q % big_n) * _shape_along(_phase(q, shift, big_n, spec.dtype), dim, spec.ndim)
    if n % 2 == 0:
        # coarse Nyquist (q = -n/2, position n/2) also receives the fine bin +n/2
        plus = torch.tensor([n // 2], device=spec.device)
        extra = spec.index_select(dim, plus) * _phase(plus, shift, big_n, spec.dtype)
        coarse = coarse.index_add(dim, plus, extra)
    if window is not None and window != "none":
        coarse = coarse * _shape_along(window_weights(n, window, spec.device).to(spec.dtype), dim, spec.ndim)
    return coarse


def _lift_dim(spec: torch.Tensor, dim: int, f: int) -> torch.Tensor:
    """Coarse spectrum along ``dim`` -> zero-filled fine spectrum (inverse of :func:`_truncate_dim`)."""
    n = spec.shape[dim]
    big_n = n * f
    shift = (f - 1) / 2.0
    q = _coarse_freqs(n, spec.device)
    coef = 1.0 / _phase(q, shift, big_n, spec.dtype)
    idx = q % big_n
    vals = spec
    if n % 2 == 0:
        plus = torch.tensor([n // 2], device=spec.device)
        coef = coef.clone()
        coef[n // 2] = coef[n // 2] * 0.5
        extra = spec.index_select(dim, plus) * (0.5 / _phase(plus, shift, big_n, spec.dtype))
        vals = torch.cat([spec * _shape_along(coef, dim, spec.ndim), extra], dim=dim)
        idx = torch.cat([idx, plus])
    else:
        vals = spec * _shape_along(coef, dim, spec.ndim)
    shape = list(spec.shape)
    shape[dim] = big_n
    out = torch.zeros(shape, dtype=spec.dtype, device=spec.device)
    return out.index_add(dim, idx, vals)


def kspace_truncate(
    x: torch.Tensor,
    factors: Sequence[int],
    dims: Sequence[int],
    window: str | None = None,
    *,
    magnitude: bool = True,
) -> torch.Tensor:
    """Keep the central ``1/f`` of k-space along each of ``dims``: the image of a shorter acquisition.

    Args:
        x: real tensor; each of ``dims`` must have a size divisible by its factor.
        factors: integer downscale per dim (1 leaves that dim alone).
        dims: dims of ``x`` to truncate (negative allowed).
        window: ``None``/``"none"``, ``"hamming"``, ``"tukey"`` or ``"fermi"`` (see module doc).
        magnitude: return ``|image|`` as a scanner would (default); ``False`` returns the real part.

    Returns:
        Real tensor of ``x``'s dtype with ``dims`` shrunk by their factors; intensities on ``x``'s scale.
    """
    pairs = _check(x, factors, dims)
    if not pairs:
        return x.abs() if magnitude else x
    spec = x.to(_complex_dtype(x))
    for d, f in pairs:
        spec = torch.fft.ifft(_truncate_dim(torch.fft.fft(spec, dim=d), d, f, window), dim=d) / f
    out = spec.abs() if magnitude else spec.real
    return out.to(x.dtype)


def zerofill_upsample(x: torch.Tensor, factors: Sequence[int], dims: Sequence[int]) -> torch.Tensor:
    """Sinc interpolation onto the grid ``f`` times finer along each of ``dims`` (zero-filled k-space).

    Args:
        x: real tensor (any values; a magnitude image is treated as real data).
        factors: integer upscale per dim.
        dims: dims of ``x`` to upsample.

    Returns:
        Real tensor with ``dims`` grown by their factors, on the same field of view (see module doc).
    """
    pairs = _check(x, factors, dims)
    if not pairs:
        return x
    spec = x.to(_complex_dtype(x))
    for d, f in pairs:
        spec = torch.fft.ifft(_lift_dim(torch.fft.fft(spec, dim=d), d, f), dim=d) * f
    return spec.real.to(x.dtype)


def data_consistency(sr: torch.Tensor, lr: torch.Tensor, factors: Sequence[int], dims: Sequence[int]) -> torch.Tensor:
    """Replace the measured (central) part of ``sr``'s spectrum by ``lr``'s, keep the rest.

    ``out = sr + zerofill_upsample(lr - kspace_truncate(sr, magnitude=False))``: the projection of ``sr``
    onto the images whose truncation (no window, no magnitude) is exactly ``lr``. Frequencies outside the
    band, and the half of the fine Nyquist pair that truncation does not see, come from ``sr``.

    Args:
        sr: real tensor on the fine grid.
        lr: real tensor on the coarse grid (``sr``'s shape with ``dims`` divided by ``factors``).
        factors, dims: as for :func:`kspace_truncate`.

    Returns:
        Real tensor shaped like ``sr``; differentiable in both inputs.
    """
    pairs = _check(sr, factors, dims)
    expected = list(sr.shape)
    for d, f in pairs:
        expected[d] //= f
    if list(lr.shape) != expected:
        raise ValueError(f"lr has shape {tuple(lr.shape)}, expected {tuple(expected)} for sr {tuple(sr.shape)}")
    residual = lr.to(sr.dtype) - kspace_truncate(sr, factors, dims, magnitude=False)
    return sr + zerofill_upsample(residual, factors, dims)


@dataclass(frozen=True)
class KSpaceStep(ResamplingStep):
    """``kspace:scale=2,axes=0+1,window=hamming``: :func:`kspace_truncate` (magnitude image) along ``axes``."""

    method: ClassVar[str] = "kspace"
    window: str | Choice | None = field(default=None, metadata=reads(one_of(WINDOWS, none_ok=True)))

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator,
              signal: float | None = None) -> torch.Tensor:
        dims = [a + 2 for a in params["axes"]]
        return kspace_truncate(t, [params["scale"]] * len(dims), dims, params["window"])
