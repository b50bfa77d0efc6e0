"""Pixel-wise, structural and frequency losses on ``(N, C, H, W)`` or ``(N, C, D, H, W)`` tensors.

All take ``(pred, target)`` and return a scalar (mean over everything). Independent of training code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    return F.l1_loss(pred, target)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    return F.mse_loss(pred, target)


def smooth_l1(pred: torch.Tensor, target: torch.Tensor, beta: float = 0.01) -> torch.Tensor:
    """Huber-style loss: quadratic below ``beta``, linear above (``beta`` in intensity units, [0, 1] data)."""
    return F.smooth_l1_loss(pred, target, beta=beta)


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``mean(sqrt((pred - target)^2 + eps^2))``, a differentiable L1 (LapSRN)."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def bce_content(pred: torch.Tensor, target: torch.Tensor,
                target_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """BCE-with-logits content loss (pediatric study): the generator output is taken as logits and the
    high-resolution image, mapped from ``target_range`` to [0, 1], as the probabilities."""
    lo, hi = target_range
    t = ((target - lo) / (hi - lo)).clamp(0.0, 1.0)
    return F.binary_cross_entropy_with_logits(pred, t)


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, gaussian: bool = True) -> torch.Tensor:
    """``1 - SSIM`` (mean over the batch) with :func:`mrisr.metrics.ssim` (2D or 3D by the tensor's rank)."""
    from mrisr.metrics import ssim

    return 1.0 - ssim(pred, target, data_range=data_range, gaussian=gaussian).mean()


def kspace_loss(pred: torch.Tensor, target: torch.Tensor, dims: Sequence[int] | None = None,
                kind: str = "l1", log_magnitude: bool = False) -> torch.Tensor:
    """Frequency-domain loss: distance between the (orthonormal) spectra of ``pred`` and ``target``.

    Args:
        dims: FFT dims; default all spatial dims (everything after N and C).
        kind: ``"l1"`` (mean modulus of the complex difference) or ``"mse"`` (mean squared modulus; with
            the orthonormal FFT and no ``log_magnitude`` this equals the pixel MSE, by Parseval).
        log_magnitude: compare ``log(1 + |F|)`` magnitudes instead of complex values (phase ignored),
            which weights high frequencies up.
    """
    if dims is None:
        dims = tuple(range(2, pred.ndim))
    fp = torch.fft.fftn(pred.float(), dim=tuple(dims), norm="ortho")
    ft = torch.fft.fftn(target.float(), dim=tuple(dims), norm="ortho")
    if log_magnitude:
        diff = torch.log1p(fp.abs()) - torch.log1p(ft.abs())
    else:
        diff = (fp - ft).abs()
    if kind == "l1":
        return diff.abs().mean()
    if kind == "mse":
        return (diff.abs() ** 2).mean()
    raise ValueError(f"kspace_loss kind must be 'l1' or 'mse', got {kind!r}")


#: Name -> loss, for configs.
PIXEL_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "l1": l1,
    "mse": mse,
    "smooth_l1": smooth_l1,
    "charbonnier": charbonnier,
    "bce_content": bce_content,
    "ssim": ssim_loss,
    "kspace": kspace_loss,
}
