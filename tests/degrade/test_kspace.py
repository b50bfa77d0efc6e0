import math

import numpy as np
import pytest
import torch

from mrisr.degrade.kspace import WINDOWS, data_consistency, kspace_truncate, window_weights, zerofill_upsample

CASES = [(12, 2), (12, 3), (12, 4), (15, 3), (16, 4), (9, 3), (10, 5), (8, 2), (14, 2)]


def band_limited(big_n: int, n: int, t: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Sum of cosines with |k| < n/2 on the fine period ``big_n``, evaluated at positions ``t``."""
    rng = np.random.default_rng(seed)
    out = torch.full_like(t, 2.0)
    for q in range(1, (n + 1) // 2):
        out = out + rng.uniform(0.2, 1.0) * torch.cos(2 * math.pi * q * t / big_n + rng.uniform(0, 2 * math.pi))
    return out


@pytest.mark.parametrize(("big_n", "f"), CASES)
def test_band_limited_truncate_then_zerofill_recovers(big_n, f):
    n = big_n // f
    t = torch.arange(big_n, dtype=torch.float64)
    x = band_limited(big_n, n, t)[None, :].repeat(3, 1)
    lr = kspace_truncate(x, [f], [1], magnitude=False)
    assert lr.shape == (3, n)
    torch.testing.assert_close(zerofill_upsample(lr, [f], [1]), x, atol=1e-10, rtol=0)
    # the coarse samples sit at the centres of the fine blocks (rescaled_affine's grid)
    centres = torch.arange(n, dtype=torch.float64) * f + (f - 1) / 2
    torch.testing.assert_close(lr[0], band_limited(big_n, n, centres), atol=1e-10, rtol=0)


def test_band_limited_2d_float32_within_1e5():
    big = torch.arange(24, dtype=torch.float64)
    img = band_limited(24, 8, big)[:, None] * band_limited(24, 12, big, seed=1)[None, :] / 10.0
    x = img.to(torch.float32)[None, None]
    lr = kspace_truncate(x, [3, 2], [-2, -1])
    assert lr.shape == (1, 1, 8, 12) and lr.dtype == torch.float32
    rec = zerofill_upsample(lr, [3, 2], [2, 3])
    assert float((rec - x).abs().max()) < 1e-5


@pytest.mark.parametrize(("big_n", "f"), CASES)
def test_zerofill_then_truncate_is_identity_even_at_nyquist(big_n, f):
    y = torch.rand(4, 2, big_n // f, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(kspace_truncate(zerofill_upsample(y, [f], [2]), [f], [2]), y, atol=1e-12, rtol=0)


@pytest.mark.parametrize("window", [None, *WINDOWS])
def test_constant_keeps_its_value(window):
    c = torch.full((2, 12, 18), 3.5)
    torch.testing.assert_close(kspace_truncate(c, [2, 3], [1, 2], window), torch.full((2, 6, 6), 3.5))
    torch.testing.assert_close(zerofill_upsample(torch.full((6, 5), 3.5), [2, 3], [0, 1]), torch.full((12, 15), 3.5))


def test_real_input_gives_real_output_without_magnitude():
    x = torch.rand(16, 16, dtype=torch.float64)
    signed = kspace_truncate(x, [2, 2], [0, 1], magnitude=False)
    torch.testing.assert_close(kspace_truncate(x, [2, 2], [0, 1]), signed.abs())


@pytest.mark.parametrize(("big_n", "f"), CASES)
def test_data_consistency_enforces_measured_band(big_n, f):
    g = torch.Generator().manual_seed(2)
    hr = torch.rand(2, 1, big_n, big_n + f, dtype=torch.float64, generator=g)
    lr = kspace_truncate(hr, [f, f], [2, 3])
    sr = torch.rand(hr.shape, dtype=torch.float64, generator=g)
    out = data_consistency(sr, lr, [f, f], [2, 3])
    torch.testing.assert_close(kspace_truncate(out, [f, f], [2, 3]), lr, atol=1e-10, rtol=0)
    # an image that already agrees with the measurement is left alone
    torch.testing.assert_close(data_consistency(out, lr, [f, f], [2, 3]), out, atol=1e-10, rtol=0)


def test_data_consistency_float32_and_gradients():
    hr = torch.rand(1, 1, 18, 12)
    lr = kspace_truncate(hr, [3, 2], [2, 3], window="hamming")
    sr = torch.rand(1, 1, 18, 12, requires_grad=True)
    out = data_consistency(sr, lr, [3, 2], [2, 3])
    assert float((kspace_truncate(out.detach(), [3, 2], [2, 3]) - lr).abs().max()) < 1e-4
    out.sum().backward()
    assert sr.grad is not None and torch.isfinite(sr.grad).all()


def test_windows_are_one_at_dc_and_taper():
    for w in WINDOWS:
        v = window_weights(16, w)
        assert v[0] == pytest.approx(1.0)
        assert float(v[8]) < 0.2  # the Nyquist end is damped
    assert torch.equal(window_weights(8, None), torch.ones(8, dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown k-space window"):
        window_weights(8, "hann")


def test_bad_arguments():
    with pytest.raises(ValueError, match="not divisible"):
        kspace_truncate(torch.rand(10), [3], [0])
    with pytest.raises(ValueError, match="positive integers"):
        kspace_truncate(torch.rand(10), [1.5], [0])
    with pytest.raises(ValueError, match="expected"):
        data_consistency(torch.rand(8, 8), torch.rand(4, 8), [2, 2], [0, 1])


def test_cached_factors_made_under_inference_mode_still_train():
    """The per-size factors are cached: made first under inference_mode, they must serve autograd later."""
    lr = torch.rand(2, 1, 14, 10, dtype=torch.float64)
    with torch.inference_mode():
        first = zerofill_upsample(lr, [3, 3], [2, 3])
    x = lr.clone().requires_grad_(True)
    out = zerofill_upsample(x, [3, 3], [2, 3])
    out.sum().backward()
    torch.testing.assert_close(out.detach(), first, atol=0, rtol=0)
    # zero-filling keeps the mean, so d(sum)/dx is f*f everywhere
    torch.testing.assert_close(x.grad, torch.full_like(lr, 9.0), atol=1e-9, rtol=0)
