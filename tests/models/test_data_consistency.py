"""Data consistency: for k-space-degraded input the output's central spectrum equals the input's (1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrisr.data.phantoms import head_phantom
from mrisr.degrade.kspace import kspace_truncate
from mrisr.models import build_model, list_models
from mrisr.models.registry import REGISTRY

TOL = 1e-4


def _central_spectrum_error(sr: np.ndarray, lr: np.ndarray, factors) -> float:
    """Independent arithmetic (numpy FFT): compare the low-resolution spectrum with the centre of the
    high-resolution one over the frequencies both grids represent (|k| < n/2), after the 1/f scaling and the
    half-voxel shift of the coarse grid (coarse sample m sits at fine index m*f + (f-1)/2). Spectra are
    divided by the number of coarse samples, so the error is in intensity units."""
    axes = tuple(range(-len(factors), 0))
    big = np.fft.fftn(sr.astype(np.float64), axes=axes)
    small = np.fft.fftn(lr.astype(np.float64), axes=axes)
    idx_small, idx_big, phase = [], [], 1.0
    for k, (ax, f) in enumerate(zip(axes, factors, strict=True)):
        n = lr.shape[ax]
        q = np.arange(-((n - 1) // 2), (n - 1) // 2 + 1)  # |q| < n/2: excludes an even grid's Nyquist bin
        shape = [1] * len(factors)
        shape[k] = q.size
        phase = phase * np.exp(2j * np.pi * q * ((f - 1) / 2) / (n * f)).reshape(shape) / f
        idx_small.append(q % n)
        idx_big.append(q % (n * f))
    lead = (slice(None),) * (lr.ndim - len(factors))
    sel_s = lead + np.ix_(*idx_small)
    sel_b = lead + np.ix_(*idx_big)
    pred = big[sel_b] * phase
    return float(np.abs(pred - small[sel_s]).max() / np.prod([lr.shape[a] for a in axes]))


def _dc_cases():
    for name in list_models("generator"):
        entry = REGISTRY[name]
        variants = [{}] + [v for v in entry.variants if "anisotropic" in v or "in_channels" in v]
        for scale in (2, 3):
            for i, v in enumerate(variants):
                yield pytest.param(name, scale, v, id=f"{name}-x{scale}-v{i}")


@pytest.mark.parametrize(("name", "scale", "variant"), list(_dc_cases()))
def test_output_keeps_measured_kspace(name, scale, variant):
    torch.manual_seed(1)
    entry = REGISTRY[name]
    model = build_model(name, scale=scale, data_consistency=True, **{**entry.tiny, **variant}).eval()
    dims = model.spatial_dims
    lr_shape = (8, 7) if dims == 2 else (6, 5, 4)
    hr_shape = tuple(n * f for n, f in zip(lr_shape, model.factors, strict=True))
    c = model.in_channels
    # HR: neighbouring phantom slices (channels) -> k-space truncation (magnitude image, as a scanner)
    hr = torch.from_numpy(np.stack([head_phantom(hr_shape, seed=s) for s in range(c)]))[None]
    sp = tuple(range(-dims, 0))
    lr = kspace_truncate(hr, model.factors, sp)
    with torch.no_grad():
        sr = model(lr)
    centre = lr[:, c // 2:c // 2 + 1]
    # via the degradation operator itself ...
    back = kspace_truncate(sr, model.factors, sp, magnitude=False)
    assert (back - centre).abs().max() < TOL
    # ... and by independent FFT arithmetic
    assert _central_spectrum_error(sr[0, 0].numpy(), centre[0, 0].numpy(), model.factors) < TOL


def test_without_data_consistency_the_spectrum_differs():
    """The check above is not vacuous: the same network without the step contradicts the measurement."""
    torch.manual_seed(1)
    model = build_model("fast", scale=2, **REGISTRY["fast"].tiny).eval()
    hr = torch.from_numpy(head_phantom((16, 14)))[None, None]
    lr = kspace_truncate(hr, (2, 2), (-2, -1))
    with torch.no_grad():
        sr = model(lr)
    assert _central_spectrum_error(sr[0, 0].numpy(), lr[0, 0].numpy(), (2, 2)) > 1e-2


def test_independent_check_agrees_with_zerofill():
    """Sanity of the helper: a zero-filled upsampling of lr has exactly lr's central spectrum."""
    from mrisr.degrade.baselines import upscale_tensor

    lr = torch.rand(1, 1, 9, 6, dtype=torch.float64)
    sr = upscale_tensor(lr, (3, 2), "zerofill")
    assert _central_spectrum_error(sr[0, 0].numpy(), lr[0, 0].numpy(), (3, 2)) < 1e-10
