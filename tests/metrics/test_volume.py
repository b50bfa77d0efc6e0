import numpy as np
import pytest
import torch
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from mrisr.metrics.image import ssim_map, ssim_maps_slices_and_volume
from mrisr.metrics.volume import score_arrays

WANG = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


@pytest.fixture(scope="module")
def pair():
    from mrisr.data.phantoms import head_phantom

    ref = head_phantom((30, 26, 14), seed=1).astype(np.float64) * 800.0
    test = ref + np.random.default_rng(0).normal(0, 30.0, ref.shape)
    return ref, test


@pytest.mark.parametrize("gaussian", [False, True])
@pytest.mark.parametrize("slice_axis", [2, 0])
def test_volume_scores_match_skimage(pair, gaussian, slice_axis):
    ref, test = pair
    dr = ref.max() - ref.min()
    kw = WANG if gaussian else {}
    got = score_arrays(ref, test, gaussian=gaussian, slice_axis=slice_axis)
    r_sl, t_sl = np.moveaxis(ref, slice_axis, 0), np.moveaxis(test, slice_axis, 0)
    per_slice = [structural_similarity(a, b, data_range=dr, **kw) for a, b in zip(r_sl, t_sl, strict=True)]
    assert got["ssim"] == pytest.approx(np.mean(per_slice), abs=1e-6)
    assert got["ssim3d"] == pytest.approx(structural_similarity(ref, test, data_range=dr, **kw), abs=1e-6)
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(ref, test, data_range=dr), abs=1e-6)
    assert got["nrmse"] == pytest.approx(normalized_root_mse(ref, test), abs=1e-6)
    assert got["data_range"] == dr


def test_masked_volume_scores(pair):
    ref, test = pair
    dr = ref.max() - ref.min()
    mask = ref > 0.2 * ref.max()
    got = score_arrays(ref, test, mask)
    maps2d = np.stack([structural_similarity(ref[:, :, k], test[:, :, k], data_range=dr, full=True)[1]
                       for k in range(ref.shape[2])], axis=2)
    assert got["ssim"] == pytest.approx(maps2d[mask].mean(), abs=1e-6)
    map3d = structural_similarity(ref, test, data_range=dr, full=True)[1]
    assert got["ssim3d"] == pytest.approx(map3d[mask].mean(), abs=1e-6)
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(ref[mask], test[mask], data_range=dr), abs=1e-6)
    assert got["voxels"] == int(mask.sum())


def test_2d_thin_and_4d(pair):
    ref, test = pair
    dr = ref.max() - ref.min()
    got = score_arrays(ref[:, :, 5], test[:, :, 5])
    assert got["ssim3d"] is None
    assert got["ssim"] == pytest.approx(structural_similarity(ref[:, :, 5], test[:, :, 5], data_range=dr), abs=1e-6)
    thin = score_arrays(ref[:, :, :4], test[:, :, :4])
    assert thin["ssim3d"] is None and 0 < thin["ssim"] < 1
    four = score_arrays(np.stack([ref, ref], -1), np.stack([test, test], -1))
    one = score_arrays(ref, test)
    for k in ("psnr", "ssim", "ssim3d", "nrmse"):
        assert four[k] == pytest.approx(one[k], abs=1e-9)


def test_shared_filtering_equals_separate_maps():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 9, 12, 10, dtype=torch.float64, generator=g)
    y = x + 0.2 * torch.rand(x.shape, dtype=torch.float64, generator=g)
    for gaussian in (False, True):
        x_ = torch.rand(2, 1, 12, 13, 11, dtype=torch.float64, generator=g) if gaussian else x
        y_ = x_ + 0.2 * torch.rand(x_.shape, dtype=torch.float64, generator=g) if gaussian else y
        s2, s3 = ssim_maps_slices_and_volume(x_, y_, 1.0, gaussian, slice_dim=3)
        torch.testing.assert_close(s3, ssim_map(x_, y_, 1.0, gaussian))
        slices = x_.movedim(3, 1).reshape(-1, 1, x_.shape[2], x_.shape[4])
        slices_y = y_.movedim(3, 1).reshape(-1, 1, x_.shape[2], x_.shape[4])
        ref2 = ssim_map(slices, slices_y, 1.0, gaussian).reshape(2, x_.shape[3], 1, x_.shape[2], x_.shape[4])
        torch.testing.assert_close(s2, ref2.movedim(1, 3).reshape(s2.shape))


def test_errors(pair):
    ref, test = pair
    with pytest.raises(ValueError, match="differs"):
        score_arrays(ref, test[:-1])
    with pytest.raises(ValueError, match="slice_axis must be 0, 1 or 2, got 7"):  # was taken modulo 3
        score_arrays(np.ones((8, 8, 8)), np.ones((8, 8, 8)), slice_axis=7)
    with pytest.raises(ValueError, match="constant"):
        score_arrays(np.ones((8, 8)), np.ones((8, 8)))
    with pytest.raises(ValueError, match="empty"):
        score_arrays(ref, test, np.zeros(ref.shape, dtype=bool))
