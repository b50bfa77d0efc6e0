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

import torch

from mrisr.degrade.resample import symmetric_index

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


def _filter(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable correlation of (B, 1, *spatial) with ``taps`` along each spatial dim, symmetric borders."""
    k = taps.numel()
    r = (k - 1) // 2
    nsp = x.ndim - 2
    conv = torch.nn.functional.conv2d if nsp == 2 else torch.nn.functional.conv3d
    for d in range(2, x.ndim):
        n = x.shape[d]
        idx = symmetric_index(torch.arange(-r, n + r, device=x.device), n)
        xp = x.index_select(d, idx)
        shape = [1, 1] + [1] * nsp
        shape[d] = k
        x = conv(xp, taps.reshape(shape))
    return x


def ssim_map(
    x: torch.Tensor, y: torch.Tensor, data_range: float | torch.Tensor, gaussian: bool = False
) -> torch.Tensor:
    """Full SSIM map, same shape as the inputs (scikit-image's ``full=True`` image)."""
    _check_pair(x, y)
    n, c = x.shape[:2]
    taps = _window(gaussian, x.dtype, x.device)
    nsp = x.ndim - 2
    win = taps.numel()
    if any(s < win for s in x.shape[2:]):
        raise ValueError(f"SSIM window {win} exceeds the image extent {tuple(x.shape[2:])}")
    cov_norm = 1.0 if gaussian else win**nsp / (win**nsp - 1.0)
    flat = lambda t: t.reshape(n * c, 1, *t.shape[2:])  # noqa: E731
    stack = torch.cat([flat(x), flat(y), flat(x * x), flat(y * y), flat(x * y)], dim=0)
    ux, uy, uxx, uyy, uxy = _filter(stack, taps).reshape(5, n, c, *x.shape[2:]).unbind(0)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    dr = _per_sample(data_range, n, x)
    c1 = (K1 * dr) ** 2
    c2 = (K2 * dr) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


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
    if mask is not None:
        return _masked_mean(s, mask)
    r = (_window(gaussian, x.dtype, x.device).numel() - 1) // 2
    crop = s[(slice(None), slice(None), *[slice(r, dim - r) for dim in s.shape[2:]])]
    return crop.flatten(1).mean(dim=1)
