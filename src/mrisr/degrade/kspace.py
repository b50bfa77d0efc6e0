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

import functools
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


@functools.lru_cache(maxsize=256)
def _plan(n: int, f: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                          torch.Tensor, torch.Tensor | None]:
    """The per-frequency factors of one ``n <-> n * f`` step, computed once per size, dtype and device.

    Returns ``(trunc, trunc_plus, lift, lift_plus)``: the phase that moves the fine coefficient of each
    coarse frequency (FFT order) onto the coarse grid, the one for the fine bin ``+n/2`` that also lands on
    the coarse Nyquist bin (even ``n``; else ``None``), and the inverse factors for zero-filling (the coarse
    Nyquist coefficient split in halves between the fine bins ``-n/2`` and ``+n/2``). They are made as normal
    tensors even when first asked for under ``torch.inference_mode`` (the cache is shared with autograd).
    """
    with torch.inference_mode(False):
        big_n, shift = n * f, (f - 1) / 2.0
        q = _coarse_freqs(n, device)
        trunc = _phase(q, shift, big_n, dtype)
        lift = 1.0 / trunc
        trunc_plus = lift_plus = None
        if n % 2 == 0:
            plus = torch.tensor([n // 2], device=device)
            trunc_plus = _phase(plus, shift, big_n, dtype)
            lift = lift.clone()
            lift[n // 2] = lift[n // 2] * 0.5
            lift_plus = 0.5 / trunc_plus
        return trunc, trunc_plus, lift, lift_plus


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
    """Fine spectrum (unnormalised FFT along ``dim``) -> coarse spectrum, shifted onto the coarse grid.

    The coarse frequencies are the first ``ceil(n/2)`` and the last ``floor(n/2)`` fine bins (FFT order),
    taken as two slices; for even ``n`` the fine bin ``+n/2`` is added to the coarse Nyquist bin.
    """
    big_n = spec.shape[dim]
    if big_n % f:
        raise ValueError(f"size {big_n} along dim {dim} is not divisible by factor {f}")
    n = big_n // f
    trunc, trunc_plus, _, _ = _plan(n, f, spec.dtype, spec.device)
    h, m = (n + 1) // 2, n // 2  # non-negative and negative coarse frequencies
    coarse = torch.cat([spec.narrow(dim, 0, h), spec.narrow(dim, big_n - m, m)], dim=dim)
    coarse = coarse * _shape_along(trunc, dim, spec.ndim)
    if trunc_plus is not None:
        # coarse Nyquist (q = -n/2, position n/2) also receives the fine bin +n/2
        extra = spec.narrow(dim, n // 2, 1) * trunc_plus
        coarse = torch.cat([coarse.narrow(dim, 0, h), coarse.narrow(dim, h, 1) + extra,
                            coarse.narrow(dim, h + 1, m - 1)], dim=dim)
    if window is not None and window != "none":
        coarse = coarse * _shape_along(window_weights(n, window, spec.device).to(spec.dtype), dim, spec.ndim)
    return coarse


def _lift_dim(spec: torch.Tensor, dim: int, f: int) -> torch.Tensor:
    """Coarse spectrum along ``dim`` -> zero-filled fine spectrum (inverse of :func:`_truncate_dim`)."""
    n = spec.shape[dim]
    big_n = n * f
    _, _, lift, lift_plus = _plan(n, f, spec.dtype, spec.device)
    h, m = (n + 1) // 2, n // 2
    vals = spec * _shape_along(lift, dim, spec.ndim)
    parts = [vals.narrow(dim, 0, h)]
    if lift_plus is not None:  # the other half of the coarse Nyquist coefficient, at the fine bin +n/2
        parts.append(spec.narrow(dim, h, 1) * lift_plus)
    shape = list(spec.shape)
    shape[dim] = big_n - h - m - len(parts) + 1
    parts += [spec.new_zeros(shape), vals.narrow(dim, h, m)]
    return torch.cat(parts, dim=dim)


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
    # one FFT over all the dims, then the (separable) truncation along each, then one inverse FFT
    dims_ = [d for d, _ in pairs]
    spec = torch.fft.fftn(x.to(_complex_dtype(x)), dim=dims_)
    for d, f in pairs:
        spec = _truncate_dim(spec, d, f, window)
    spec = torch.fft.ifftn(spec, dim=dims_) / math.prod(f for _, f in pairs)
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
    dims_ = [d for d, _ in pairs]
    spec = torch.fft.fftn(x.to(_complex_dtype(x)), dim=dims_)
    for d, f in pairs:
        spec = _lift_dim(spec, d, f)
    spec = torch.fft.ifftn(spec, dim=dims_) * math.prod(f for _, f in pairs)
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
