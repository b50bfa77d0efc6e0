"""Rician noise at a given SNR: the magnitude of a complex image with Gaussian noise in both channels.

``SNR = mean(foreground signal) / sigma`` where the foreground is :func:`mrisr.metrics.masks.foreground_mask`
of the image the noise is added to (the whole image if it has no foreground). The noisy magnitude is
``sqrt((x + n1)^2 + n2^2)`` with ``n1, n2 ~ N(0, sigma^2)`` drawn from the caller's generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from mrisr.degrade.step import Step, Uniform, number, reads
from mrisr.errors import ConfigError
from mrisr.metrics.masks import foreground_mask


def foreground_signal(x: np.ndarray | torch.Tensor, max_voxels: int | None = None) -> float:
    """Mean of the foreground of ``x`` (the whole image if it has none): the signal an SNR refers to.

    ``max_voxels`` (optional) estimates it on a regular strided subsample of at most about that many
    voxels (a whole prepared volume in a dataset, where the exact value is not worth a full pass).
    """
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if max_voxels is not None and a.size > max_voxels:
        step = int(np.ceil((a.size / max_voxels) ** (1.0 / a.ndim)))
        a = a[(slice(None, None, step),) * a.ndim]
    a = np.asarray(a, dtype=np.float64)
    mask = foreground_mask(a)
    return float(a[mask].mean()) if mask.any() else float(a.mean())


def sigma_for_snr(x: torch.Tensor, snr: float, signal: float | None = None) -> float:
    """Noise standard deviation giving ``snr`` relative to ``signal`` (default: the foreground mean of ``x``)."""
    if snr <= 0:
        raise ValueError(f"SNR must be positive, got {snr}")
    return abs(foreground_signal(x) if signal is None else float(signal)) / snr


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


@dataclass(frozen=True)
class NoiseStep(Step):
    """``noise:snr=20..40`` or ``noise:sigma=5``: :func:`add_rician`; the grid is kept.

    ``snr`` is relative to the foreground mean of the image the noise is added to, or of the ``signal``
    given to :meth:`apply` (a dataset passes the whole volume's, so every slice gets one sigma);
    ``sigma`` is in intensity units.
    """

    method: ClassVar[str] = "noise"
    snr: float | Uniform | None = field(default=None, metadata=reads(number(above=0.0)))
    sigma: float | Uniform | None = field(default=None, metadata=reads(number(at_least=0.0)))

    def check(self) -> None:
        if (self.snr is None) == (self.sigma is None):
            raise ConfigError("noise needs exactly one of snr=... (relative to the foreground mean) or sigma=...")

    @property
    def uses_signal(self) -> bool:
        return self.snr is not None

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator,
              signal: float | None = None) -> torch.Tensor:
        if params["sigma"] is None:  # recorded: the sigma this image got for its SNR
            params["sigma"] = sigma_for_snr(t, params["snr"], signal)
        return add_rician(t, params["sigma"], rng)
