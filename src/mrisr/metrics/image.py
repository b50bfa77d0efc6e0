"""PSNR, SSIM and NRMSE in PyTorch: batched, differentiable, equal to scikit-image's to 1e-6.

Inputs are ``(N, C, H, W)`` (2D) or ``(N, C, D, H, W)`` (3D) tensors; every function returns one value per
sample, shape ``(N,)``, averaged over channels and positions. The first argument is the reference
(scikit-image's ``image_true``; it matters for NRMSE only). ``data_range`` is always explicit (a float or
a ``(N,)`` tensor): the reference's ``max - min`` is the usual choice for MRI, never a hard-coded 255.

``mask`` (bool, broadcastable to the inputs, e.g. ``(N, 1, H, W)``) restricts every metric to the masked
positions. Masked SSIM is the mean of the full SSIM map (scikit-image's ``full=True`` map, borders
included, computed on the whole image) over the mask; unmasked SSIM is scikit-image's mean over the map
with ``(win - 1) / 2`` positions cropped at every border.

SSIM variants: ``gaussian=False`` is scikit-image's default (7x7[x7] uniform window, sample covariance);
``gaussian=True`` is Wang et al. 2004 (Gaussian sigma 1.5 truncated at 3.5 sigma, an 11-tap window,
population covariance) = ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)``. Filters use half-sample symmetric borders, as scipy's ``"reflect"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

K1 = 0.01
K2 = 0.03
UNIFORM_WIN = 7
GAUSSIAN_SIGMA = 1.5
GAUSSIAN_TRUNCATE = 3.5

NRMSE_NORMALISATIONS = ("euclidean", "min-max", "mean")


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.ndim not in (4, 5):
        raise ValueError(f"expected (N, C, H, W) or (N, C, D, H, W), got {tuple(x.shape)}")


def _per_sample(v: torch.Tensor | float, n: int, like: torch.Tensor) -> torch.Tensor:
    """A float or (N,) tensor as a (N, 1, 1, ...) tensor broadcastable against ``like``."""
    t = torch.as_tensor(v, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(n)
    return t.reshape(n, *([1] * (like.ndim - 1)))


def _masked_mean(v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-sample mean of ``v`` (N, ...) over all positions, or over the True positions of ``mask``."""
    if mask is None:
        return v.flatten(1).mean(dim=1)
    m = mask.to(torch.bool).expand_as(v).flatten(1)
    count = m.sum(dim=1)
    if bool((count == 0).any()):
        raise ValueError("mask is empty for at least one sample")
    return torch.where(m, v.flatten(1), torch.zeros((), dtype=v.dtype, device=v.device)).sum(dim=1) / count


def mse(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per sample, ``(N,)``."""
    _check_pair(x, y)
    return _masked_mean((x - y) ** 2, mask)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float | torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``, per sample ``(N,)``.

    Identical images give ``inf`` (as scikit-image).
    """
    err = mse(x, y, mask)
    dr = _per_sample(data_range, x.shape[0], err).reshape(-1)
    return 10.0 * torch.log10(dr**2 / err)


def nrmse(
    x: torch.Tensor, y: torch.Tensor, normalization: str = "euclidean", mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Root MSE normalised by the reference ``x``, per sample ``(N,)`` (scikit-image's ``normalized_root_mse``).

    ``euclidean``: ``sqrt(mean(x^2))``; ``min-max``: ``x.max() - x.min()``; ``mean``: ``x.mean()`` (each over the
    mask when given).
    """
    err = mse(x, y, mask)
    if normalization == "euclidean":
        denom = torch.sqrt(_masked_mean(x * x, mask))
    elif normalization == "min-max":
        flat = x.flatten(1)
        if mask is None:
            denom = flat.amax(dim=1) - flat.amin(dim=1)
        else:
            m = mask.to(torch.bool).expand_as(x).flatten(1)
            inf = torch.tensor(math.inf, dtype=x.dtype, device=x.device)
            denom = torch.where(m, flat, -inf).amax(dim=1) - torch.where(m, flat, inf).amin(dim=1)
    elif normalization == "mean":
        denom = _masked_mean(x, mask)
    else:
        raise ValueError(f"unknown normalization {normalization!r}; choose from {', '.join(NRMSE_NORMALISATIONS)}")
    return torch.sqrt(err) / denom


def _window(gaussian: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1D normalised filter taps: uniform 7, or Gaussian sigma 1.5 with scipy's radius int(3.5 s + 0.5)."""
    if not gaussian:
        return torch.full((UNIFORM_WIN,), 1.0 / UNIFORM_WIN, dtype=dtype, device=device)
    radius = int(GAUSSIAN_TRUNCATE * GAUSSIAN_SIGMA + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (t / GAUSSIAN_SIGMA) ** 2)
    return (w / w.sum()).to(dtype=dtype, device=device)


def _pad_symmetric(x: torch.Tensor, dim: int, r: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """Half-sample symmetric padding by ``r <= size`` on both ends of ``dim`` (scipy's ``"reflect"``)."""
    n = x.shape[dim]
    left, right = x.narrow(dim, 0, r).flip(dim), x.narrow(dim, n - r, r).flip(dim)
    if out is None:
        return torch.cat([left, x, right], dim=dim)
    out.narrow(dim, 0, r).copy_(left)
    out.narrow(dim, r, n).copy_(x)
    out.narrow(dim, n + r, r).copy_(right)
    return out


def _filter(x: torch.Tensor, taps: torch.Tensor, dims: Sequence[int], inplace: bool = False) -> torch.Tensor:
    """Separable correlation of ``x`` with ``taps`` along ``dims``, symmetric borders.

    A uniform window is a running sum (cumulative sum, then a difference); other windows are a sum of
    shifted slices. Both are exact in float64 and, on CPU, much faster than ``conv3d``. ``inplace``
    overwrites ``x`` and reuses one padding buffer: large CPU allocations are what costs time here.
    """
    k = taps.numel()
    r = (k - 1) // 2
    uniform = bool((taps == taps[0]).all())
    buf = None
    if inplace and dims:
        longest = max(x.numel() // x.shape[d] * (x.shape[d] + 2 * r) for d in dims)
        buf = torch.empty(longest, dtype=x.dtype, device=x.device)
    if inplace and uniform:
        assert buf is not None
        for d in dims:
            _box_inplace(x, d, r, buf)
        return x.mul_(float(taps[0]) ** len(dims))  # the window sums become means in one pass
    for d in dims:
        n = x.shape[d]
        shape = list(x.shape)
        shape[d] += 2 * r
        xp = _pad_symmetric(x, d, r, None if buf is None else buf[: math.prod(shape)].view(shape))
        if not inplace:
            if uniform:
                c = torch.cumsum(xp, dim=d)
                x = torch.cat([c.narrow(d, k - 1, 1), c.narrow(d, k, n - 1) - c.narrow(d, 0, n - 1)], dim=d)
                x = x * taps[0]
            else:
                acc = xp.narrow(d, 0, n) * taps[0]
                for t in range(1, k):
                    acc = acc + xp.narrow(d, t, n) * taps[t]
                x = acc
        else:
            x.copy_(xp.narrow(d, 0, n)).mul_(taps[0])
            for t in range(1, k):
                x.add_(xp.narrow(d, t, n), alpha=float(taps[t]))
    return x


def _box_inplace(x: torch.Tensor, d: int, r: int, buf: torch.Tensor) -> None:
    """Sum over ``2 r + 1`` neighbours along ``d`` with symmetric borders, in place, via a cumulative sum.

    With ``C[k] = x[0] + ... + x[k-1]`` the window sum at ``i`` is ``C[i+r+1] - C[i-r]`` inside; at the
    borders the reflected part adds ``C[r-i]`` (left) or ``C[n] - C[2n-1-i-r]`` (right). Needs ``n > 2 r``.
    """
    n = x.shape[d]
    shape = list(x.shape)
    shape[d] = n + 1
    c = buf[: math.prod(shape)].view(shape)
    c.narrow(d, 0, 1).zero_()
    torch.cumsum(x, d, out=c.narrow(d, 1, n))
    inner = n - 2 * r
    torch.sub(c.narrow(d, 2 * r + 1, inner), c.narrow(d, 0, inner), out=x.narrow(d, r, inner))
    total = c.narrow(d, n, 1)
    for i in range(r):
        torch.add(c.narrow(d, i + r + 1, 1), c.narrow(d, r - i, 1), out=x.narrow(d, i, 1))
        j = n - 1 - i
        torch.sub(total * 2, c.narrow(d, j - r, 1), out=x.narrow(d, j, 1)).sub_(c.narrow(d, 2 * n - 1 - j - r, 1))


def _moments(x: torch.Tensor, y: torch.Tensor, inplace: bool) -> torch.Tensor:
    """``(5, *x.shape)`` stack of x, y, x*x, y*y, x*y (the images SSIM filters)."""
    if not inplace:
        return torch.stack([x, y, x * x, y * y, x * y])
    m = torch.empty((5, *x.shape), dtype=x.dtype, device=x.device)
    m[0].copy_(x)
    m[1].copy_(y)
    torch.mul(x, x, out=m[2])
    torch.mul(y, y, out=m[3])
    torch.mul(x, y, out=m[4])
    return m


def _ssim_from_moments(m: torch.Tensor, dr: torch.Tensor, cov_norm: float, inplace: bool) -> torch.Tensor:
    """SSIM map from filtered moments ``m`` (5, N, C, ...); ``dr`` broadcastable (N, 1, ...)."""
    c1 = (K1 * dr) ** 2
    c2 = (K2 * dr) ** 2
    ux, uy, uxx, uyy, uxy = m.unbind(0)
    if not inplace:
        vx = cov_norm * (uxx - ux * ux)
        vy = cov_norm * (uyy - uy * uy)
        vxy = cov_norm * (uxy - ux * uy)
        return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    uxx.addcmul_(ux, ux, value=-1.0)  # vx / cov_norm
    uyy.addcmul_(uy, uy, value=-1.0)  # vy / cov_norm
    uxy.addcmul_(ux, uy, value=-1.0).mul_(2.0 * cov_norm).add_(c2)  # A2 = 2 vxy + C2
    uxx.add_(uyy).mul_(cov_norm).add_(c2)  # B2 = vx + vy + C2
    torch.mul(ux, uy, out=uyy).mul_(2.0).add_(c1)  # A1 = 2 ux uy + C1
    ux.mul_(ux).addcmul_(uy, uy).add_(c1)  # B1 = ux^2 + uy^2 + C1
    return uyy.mul_(uxy).div_(ux.mul_(uxx))


def _prepare(x: torch.Tensor, y: torch.Tensor, gaussian: bool) -> tuple[torch.Tensor, bool]:
    _check_pair(x, y)
    taps = _window(gaussian, x.dtype, x.device)
    if any(s < taps.numel() for s in x.shape[2:]):
        raise ValueError(f"SSIM window {taps.numel()} exceeds the image extent {tuple(x.shape[2:])}")
    inplace = not (torch.is_grad_enabled() and (x.requires_grad or y.requires_grad))
    return taps, inplace


def _cov_norm(gaussian: bool, taps: torch.Tensor, nsp: int) -> float:
    size = taps.numel() ** nsp
    return 1.0 if gaussian else size / (size - 1.0)


def ssim_map(
    x: torch.Tensor, y: torch.Tensor, data_range: float | torch.Tensor, gaussian: bool = False
) -> torch.Tensor:
    """Full SSIM map, same shape as the inputs (scikit-image's ``full=True`` image)."""
    taps, inplace = _prepare(x, y, gaussian)
    m = _filter(_moments(x, y, inplace), taps, range(3, x.ndim + 1), inplace)
    return _ssim_from_moments(m, _per_sample(data_range, x.shape[0], x), _cov_norm(gaussian, taps, x.ndim - 2), inplace)


def ssim_maps_slices_and_volume(
    x: torch.Tensor, y: torch.Tensor, data_range: float | torch.Tensor, gaussian: bool = False, slice_dim: int = -1
) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``(N, C, D, H, W)``: the 2D SSIM maps of the slices along ``slice_dim`` and the 3D SSIM map.

    Equal to ``ssim_map`` of each 2D slice and ``ssim_map`` of the volume; the in-plane filtering is
    shared, which makes the pair cheaper than the two calls.
    """
    if x.ndim != 5:
        raise ValueError(f"expected (N, C, D, H, W), got {tuple(x.shape)}")
    taps, inplace = _prepare(x, y, gaussian)
    slice_dim %= x.ndim
    if slice_dim < 2:
        raise ValueError("slice_dim must be a spatial dim (2, 3 or 4)")
    dr = _per_sample(data_range, x.shape[0], x)
    m = _filter(_moments(x, y, inplace), taps, [d + 1 for d in range(2, 5) if d != slice_dim], inplace)
    map2d = _ssim_from_moments(m.clone() if inplace else m, dr, _cov_norm(gaussian, taps, 2), inplace)
    m = _filter(m, taps, [slice_dim + 1], inplace)
    return map2d, _ssim_from_moments(m, dr, _cov_norm(gaussian, taps, 3), inplace)


def crop_mean(s: torch.Tensor, r: int, dims: Sequence[int] | None = None) -> torch.Tensor:
    """Per-sample mean of a map with ``r`` positions cropped at both ends of ``dims`` (default: spatial)."""
    idx = [slice(None)] * s.ndim
    for d in range(2, s.ndim) if dims is None else dims:
        idx[d] = slice(r, s.shape[d] - r)
    return s[tuple(idx)].flatten(1).mean(dim=1)


def window_radius(gaussian: bool) -> int:
    """Half-width of the SSIM window: 3 (uniform 7) or 5 (Gaussian, 11 taps)."""
    return UNIFORM_WIN // 2 if not gaussian else int(GAUSSIAN_TRUNCATE * GAUSSIAN_SIGMA + 0.5)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float | torch.Tensor,
    gaussian: bool = False,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean SSIM per sample, ``(N,)``: 2D for ``(N, C, H, W)``, 3D (cubic window) for ``(N, C, D, H, W)``.

    Without a mask, the map is averaged with ``(win - 1) / 2`` border positions cropped (scikit-image);
    with a mask, the uncropped map is averaged over the mask.
    """
    s = ssim_map(x, y, data_range, gaussian)
    return _masked_mean(s, mask) if mask is not None else crop_mean(s, window_radius(gaussian))
