import numpy as np
import pytest
import torch

from mrisr.degrade.noise import add_rician, sigma_for_snr
from mrisr.degrade.slice_profile import slice_weights, thick_slices
from mrisr.metrics.masks import foreground_mask


def test_rect_profile_is_a_box_average():
    w = slice_weights(12, 3, 3.0, "rect")
    assert w.shape == (4, 12)
    expected = torch.zeros(4, 12, dtype=torch.float64)
    for m in range(4):
        expected[m, 3 * m : 3 * m + 3] = 1 / 3
    torch.testing.assert_close(w, expected)


def test_rect_profile_with_gap_has_partial_voxels():
    w = slice_weights(8, 2, 1.5, "rect")  # thickness 1.5 around centre 0.5: [-0.25, 1.25]
    torch.testing.assert_close(w[0, :3], torch.tensor([0.75, 0.75, 0.0], dtype=torch.float64) / 1.5)


def test_gaussian_profile_fwhm_equals_thickness():
    w = slice_weights(400, 100, 40.0, "gaussian")[2]  # fine profile, centre 249.5
    j = torch.arange(400, dtype=torch.float64)
    half = w.max() / 2
    above = j[w >= half]
    assert float(above.max() - above.min() + 1) == pytest.approx(40.0, abs=1.0)
    assert float((w * j).sum()) == pytest.approx(249.5, abs=1e-6)


def test_thick_slices_keep_constants_and_shape():
    x = torch.full((2, 1, 5, 6, 12), 7.0)
    y = thick_slices(x, 3, 4, profile="gaussian")
    assert y.shape == (2, 1, 5, 6, 4)
    torch.testing.assert_close(y, torch.full_like(y, 7.0))


def test_rician_noise_matches_snr(rng):
    from mrisr.data.phantoms import head_phantom

    x = torch.from_numpy(head_phantom((96, 96)) * 100.0).double()
    sigma = sigma_for_snr(x, 20.0)
    fg = foreground_mask(x.numpy())
    assert sigma == pytest.approx(float(x.numpy()[fg].mean()) / 20.0)
    noisy = add_rician(x, sigma, rng)
    background = noisy.numpy()[x.numpy() == 0]
    # Rayleigh background: mean sigma * sqrt(pi / 2)
    assert background.mean() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.05)
    assert (noisy >= 0).all()
    assert add_rician(x, 0.0, rng) is x


def test_foreground_mask_of_constant_is_empty():
    assert not foreground_mask(np.ones((4, 4))).any()
    with pytest.raises(ValueError, match="positive"):
        sigma_for_snr(torch.ones(4, 4), 0.0)
