"""Rician noise at a given SNR: the magnitude of a complex image with Gaussian noise in both channels.

``SNR = mean(foreground signal) / sigma`` where the foreground is :func:`mrisr.metrics.masks.foreground_mask`
of the image the noise is added to (the whole image if it has no foreground). The noisy magnitude is
``sqrt((x + n1)^2 + n2^2)`` with ``n1, n2 ~ N(0, sigma^2)`` drawn from the caller's generator.
"""

from __future__ import annotations

import numpy as np
import torch

from mrisr.metrics.masks import foreground_mask


def sigma_for_snr(x: torch.Tensor, snr: float) -> float:
    """Noise standard deviation giving ``snr`` relative to the foreground mean of ``x``."""
    if snr <= 0:
        raise ValueError(f"SNR must be positive, got {snr}")
    a = x.detach().cpu().double().numpy()
    mask = foreground_mask(a)
    signal = float(a[mask].mean()) if mask.any() else float(a.mean())
    return abs(signal) / snr


def add_rician(x: torch.Tensor, sigma: float, rng: np.random.Generator) -> torch.Tensor:
    """``sqrt((x + n1)^2 + n2^2)`` with i.i.d. ``N(0, sigma^2)`` noise from ``rng``; same shape/dtype as ``x``."""
    if sigma < 0:
        raise ValueError(f"noise sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return x
    n = rng.standard_normal((2, *x.shape)) * sigma
    n1 = torch.from_numpy(n[0]).to(dtype=x.dtype, device=x.device)
    n2 = torch.from_numpy(n[1]).to(dtype=x.dtype, device=x.device)
    return torch.sqrt((x + n1) ** 2 + n2**2)
