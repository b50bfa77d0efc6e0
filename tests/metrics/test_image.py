"""The PyTorch metrics against scikit-image to 1e-6, on random and real (MNI152) images."""

import numpy as np
import pytest
import torch
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from mrisr.metrics import nrmse, psnr, ssim, ssim_map

TOL = 1e-6
WANG = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


@pytest.fixture(scope="module")
def mni_pair() -> tuple[np.ndarray, np.ndarray]:
    """Three axial MNI152 slices (real anatomy) and a blurred, noisy copy, float64."""
    nilearn_datasets = pytest.importorskip("nilearn.datasets")
    data = np.asarray(nilearn_datasets.load_mni152_template(resolution=2).get_fdata(), dtype=np.float64)
    ref = np.stack([data[:, :, k] for k in (30, 45, 60)])
    from scipy.ndimage import gaussian_filter

    test = gaussian_filter(ref, (0, 1.0, 1.0)) + np.random.default_rng(0).normal(0, 0.02, ref.shape)
    return ref, test


@pytest.fixture(scope="module")
def random_pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    ref = rng.random((3, 37, 41)) * 5.0
    return ref, ref + rng.normal(0, 0.7, ref.shape)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)[:, None]


@pytest.mark.parametrize("pair", ["random_pair", "mni_pair"])
@pytest.mark.parametrize("gaussian", [False, True])
def test_ssim_2d_matches_skimage(request, pair, gaussian):
    ref, test = request.getfixturevalue(pair)
    dr = float(ref.max() - ref.min())
    kw = WANG if gaussian else {}
    expected = [structural_similarity(r, t, data_range=dr, **kw) for r, t in zip(ref, test, strict=True)]
    np.testing.assert_allclose(ssim(_t(ref), _t(test), dr, gaussian=gaussian).numpy(), expected, atol=TOL, rtol=0)
    full = np.stack([structural_similarity(r, t, data_range=dr, full=True, **kw)[1] for r, t in zip(ref, test, strict=True)])
    np.testing.assert_allclose(ssim_map(_t(ref), _t(test), dr, gaussian=gaussian)[:, 0].numpy(), full, atol=TOL, rtol=0)


@pytest.mark.parametrize("pair", ["random_pair", "mni_pair"])
@pytest.mark.parametrize("gaussian", [False, True])
def test_masked_ssim_is_mean_of_full_map_over_mask(request, pair, gaussian):
    ref, test = request.getfixturevalue(pair)
    dr = float(ref.max() - ref.min())
    mask = ref > np.percentile(ref, 40)
    kw = WANG if gaussian else {}
    expected = [
        structural_similarity(r, t, data_range=dr, full=True, **kw)[1][m].mean()
        for r, t, m in zip(ref, test, mask, strict=True)
    ]
    got = ssim(_t(ref), _t(test), dr, gaussian=gaussian, mask=torch.from_numpy(mask)[:, None])
    np.testing.assert_allclose(got.numpy(), expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("gaussian", [False, True])
def test_ssim_3d_matches_skimage(mni_pair, gaussian):
    ref, test = mni_pair  # (3, X, Y) stacked slices: a small real 3D block
    ref3 = np.repeat(ref, 4, axis=0)[None]  # depth 12 >= 11-tap Gaussian window
    test3 = np.repeat(test, 4, axis=0)[None]
    dr = float(ref.max() - ref.min())
    kw = WANG if gaussian else {}
    got = ssim(torch.from_numpy(ref3)[:, None], torch.from_numpy(test3)[:, None], dr, gaussian=gaussian)
    np.testing.assert_allclose(got.numpy(), [structural_similarity(ref3[0], test3[0], data_range=dr, **kw)], atol=TOL)
    rng = np.random.default_rng(3)
    a = rng.random((13, 15, 12))
    b = a + rng.normal(0, 0.3, a.shape)
    mask = a > 0.3
    got = ssim(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None], 1.0, gaussian=gaussian,
               mask=torch.from_numpy(mask)[None, None])
    full = structural_similarity(a, b, data_range=1.0, full=True, **kw)[1]
    np.testing.assert_allclose(got.numpy(), [full[mask].mean()], atol=TOL, rtol=0)


@pytest.mark.parametrize("pair", ["random_pair", "mni_pair"])
def test_psnr_and_nrmse_match_skimage(request, pair):
    ref, test = request.getfixturevalue(pair)
    dr = float(ref.max() - ref.min())
    mask = ref > np.percentile(ref, 30)
    tm = torch.from_numpy(mask)[:, None]
    expected = [peak_signal_noise_ratio(r, t, data_range=dr) for r, t in zip(ref, test, strict=True)]
    np.testing.assert_allclose(psnr(_t(ref), _t(test), dr).numpy(), expected, atol=TOL, rtol=0)
    expected = [peak_signal_noise_ratio(r[m], t[m], data_range=dr) for r, t, m in zip(ref, test, mask, strict=True)]
    np.testing.assert_allclose(psnr(_t(ref), _t(test), dr, mask=tm).numpy(), expected, atol=TOL, rtol=0)
    for norm in ("euclidean", "min-max", "mean"):
        expected = [normalized_root_mse(r, t, normalization=norm) for r, t in zip(ref, test, strict=True)]
        np.testing.assert_allclose(nrmse(_t(ref), _t(test), norm).numpy(), expected, atol=TOL, rtol=0)
        expected = [normalized_root_mse(r[m], t[m], normalization=norm) for r, t, m in zip(ref, test, mask, strict=True)]
        np.testing.assert_allclose(nrmse(_t(ref), _t(test), norm, mask=tm).numpy(), expected, atol=TOL, rtol=0)


def test_psnr_3d_and_per_sample_data_range():
    rng = np.random.default_rng(4)
    a = rng.random((2, 1, 6, 7, 8))
    b = a + rng.normal(0, 0.1, a.shape)
    dr = torch.tensor([1.0, 2.0], dtype=torch.float64)
    got = psnr(torch.from_numpy(a), torch.from_numpy(b), dr).numpy()
    expected = [peak_signal_noise_ratio(a[i, 0], b[i, 0], data_range=float(dr[i])) for i in range(2)]
    np.testing.assert_allclose(got, expected, atol=TOL)


def test_ssim_is_differentiable_and_identity_is_one():
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    y = x.clone().requires_grad_(True)
    s = ssim(x, y, 1.0, gaussian=True)
    torch.testing.assert_close(s.detach(), torch.ones(2, dtype=torch.float64))
    (1 - s).sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()


def test_metric_errors():
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(x, torch.rand(1, 1, 8, 9), 1.0)
    with pytest.raises(ValueError, match="exceeds"):
        ssim(torch.rand(1, 1, 5, 5), torch.rand(1, 1, 5, 5), 1.0)
    with pytest.raises(ValueError, match="normalization"):
        nrmse(x, x, "max")
    with pytest.raises(ValueError, match="empty"):
        psnr(x, x, 1.0, mask=torch.zeros(1, 1, 8, 8, dtype=torch.bool))
