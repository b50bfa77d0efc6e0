"""Synthetic contrasts from label maps and noisy targets (mrisr.data.synth), on a small label phantom."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from mrisr.data.synth import (
    SynthRanges,
    deform_labels,
    draw_synth_params,
    noisy_target,
    render_synth,
    smooth_field,
    subdivide,
    synth_volume,
    tissue_labels,
)

#: no texture, blur, bias, deformation or noise: each label's intensity is exactly its drawn mean (scaled)
PLAIN = dict(texture=(0.0, 0.0), blur_sigma=(0.0, 0.0), bias=(0.0, 0.0), deform_mm=(0.0, 0.0), rotate_deg=0.0,
             scaling=(1.0, 1.0), gamma=(1.0, 1.0), snr=None, inversion=0.0)


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    """40 x 44 x 24 nested-ellipsoid label phantom: 0 air, 1 'skin', 2 'CSF', 3 'GM', 4 'WM'."""
    g = np.meshgrid(*[np.linspace(-1, 1, n) for n in (40, 44, 24)], indexing="ij")
    r = np.sqrt(g[0] ** 2 + (g[1] / 0.9) ** 2 + (g[2] / 0.8) ** 2)
    out = np.zeros(r.shape, dtype=np.int32)
    for value, radius in ((1, 0.95), (2, 0.8), (3, 0.7), (4, 0.45)):
        out[r < radius] = value
    return out


def _means(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array([image[labels == v].mean() for v in range(1, int(labels.max()) + 1)])


def test_shape_dtype_range_and_determinism(labels: np.ndarray):
    a = synth_volume(labels, np.random.default_rng(3))
    b = synth_volume(labels, np.random.default_rng(3))
    assert a.shape == labels.shape and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert a.min() >= 0 and 0.8 < np.percentile(a, 99.9) and a.max() < 1.5  # [0, 1] plus a little noise
    assert np.isfinite(a).all()


def test_2d_labels_work(labels: np.ndarray):
    img = synth_volume(labels[:, :, 12], np.random.default_rng(0), spacing=(0.7, 0.7))
    assert img.shape == labels.shape[:2] and np.isfinite(img).all()


def test_all_background_labels_give_a_finite_image_even_inverted():
    img = synth_volume(np.zeros((12, 10, 6), dtype=np.int32), np.random.default_rng(0), inversion=1.0)
    assert img.shape == (12, 10, 6) and np.isfinite(img).all()


def test_intensities_differ_across_seeds(labels: np.ndarray):
    means = [_means(synth_volume(labels, np.random.default_rng(s), **PLAIN), labels) for s in range(4)]
    orders = {tuple(np.argsort(m)) for m in means}
    assert len(orders) > 1  # the contrast itself changes, not only the noise
    assert min(np.abs(means[0] - m).max() for m in means[1:]) > 0.05


def test_inversion_flips_the_ordering_of_label_intensities(labels: np.ndarray):
    params = draw_synth_params(labels, np.random.default_rng(5), **PLAIN)
    plain = render_synth(labels, params)
    inverted = render_synth(labels, replace(params, inverted=True))
    m0, m1 = _means(plain, labels), _means(inverted, labels)
    assert np.array_equal(np.argsort(m0), np.argsort(-m1))
    assert plain[labels == 0].mean() < 0.1 and inverted[labels == 0].mean() < 0.1  # air stays dark
    assert draw_synth_params(labels, np.random.default_rng(0), inversion=1.0).inverted
    assert not draw_synth_params(labels, np.random.default_rng(0), inversion=0.0).inverted


def test_rician_noise_matches_the_requested_snr(labels: np.ndarray):
    params = draw_synth_params(labels, np.random.default_rng(1), **{**PLAIN, "snr": (25.0, 25.0),
                                                                    "background": (0.0, 0.0)})
    clean = render_synth(labels, replace(params, snr=None))
    noisy = render_synth(labels, params)
    sigma_want = clean[labels > 0].mean() / 25.0
    # air is 0: Rician of 0 is Rayleigh, mean sigma * sqrt(pi / 2)
    air = (ndimage.distance_transform_edt(labels == 0) > 2)
    sigma_air = noisy[air].mean() / np.sqrt(np.pi / 2)
    # bright tissue: Rician ~ Gaussian, the difference to the clean image has std sigma
    bright = labels == int(np.argmax(_means(clean, labels))) + 1
    sigma_tissue = (noisy - clean)[bright].std()
    assert sigma_air == pytest.approx(sigma_want, rel=0.05)
    assert sigma_tissue == pytest.approx(sigma_want, rel=0.1)


def test_noisy_target_matches_its_snr_in_the_image_units():
    rng = np.random.default_rng(0)
    image = np.zeros((64, 64, 8), dtype=np.float32)
    image[16:48, 16:48] = 800.0  # scanner units, not [0, 1]
    out = noisy_target(image, rng, (40.0, 40.0))
    assert out.snr == 40.0 and out.sigma == pytest.approx(20.0)
    assert (out.image - image)[20:44, 20:44].std() == pytest.approx(20.0, rel=0.05)
    assert out.image.shape == image.shape and out.image.dtype == np.float32
    drawn = [noisy_target(image, np.random.default_rng(s), (20.0, 60.0)).snr for s in range(20)]
    assert 20.0 <= min(drawn) < max(drawn) <= 60.0
    with pytest.raises(ValueError, match="snr_range"):
        noisy_target(image, rng, (0.0, 10.0))


def test_deformed_labels_keep_their_label_set_and_move(labels: np.ndarray):
    params = draw_synth_params(labels, np.random.default_rng(2), deform_mm=(3.0, 3.0), rotate_deg=10.0)
    warped = deform_labels(labels, params, np.random.default_rng(params.field_seed), spacing=(1.0, 1.0, 1.5))
    assert warped.shape == labels.shape and warped.dtype == labels.dtype
    assert set(np.unique(warped)) == set(np.unique(labels))  # order 0: no new (interpolated) labels
    changed = (warped != labels).mean()
    assert 0.01 < changed < 0.5


def test_no_deformation_is_the_identity(labels: np.ndarray):
    params = draw_synth_params(labels, np.random.default_rng(2), **PLAIN)
    assert np.array_equal(deform_labels(labels, params, np.random.default_rng(0)), labels)


def test_smooth_field_equals_cubic_zoom_of_its_control_points():
    shape = (20, 17, 9)
    fast = smooth_field(np.random.default_rng(4), shape, 5, 0.7)
    coarse = np.random.default_rng(4).standard_normal((5, 5, 5)) * 0.7
    slow = ndimage.zoom(coarse, [n / 5 for n in shape], order=3, mode="nearest", grid_mode=True)
    assert fast.shape == shape and np.allclose(fast, slow, atol=1e-5)


def test_ranges_are_validated_and_misspelt_overrides_fail(labels: np.ndarray):
    with pytest.raises(ValueError, match="gamma"):
        SynthRanges(gamma=(2.0, 1.0))
    with pytest.raises(ValueError, match="inversion"):
        SynthRanges(inversion=1.5)
    with pytest.raises(TypeError):
        synth_volume(labels, np.random.default_rng(0), gama=(1.0, 1.0))
    params = draw_synth_params(labels, np.random.default_rng(0))
    with pytest.raises(ValueError, match="not drawn for"):
        render_synth(labels + 10, params)


def test_params_are_json_and_stay_within_their_ranges(labels: np.ndarray):
    import json

    r = SynthRanges()
    for s in range(10):
        p = draw_synth_params(labels, np.random.default_rng(s), r)
        json.dumps(p.as_json())
        assert r.gamma[0] <= p.gamma <= r.gamma[1] and p.snr is not None and r.snr is not None
        assert r.snr[0] <= p.snr <= r.snr[1] and all(r.blur_sigma[0] <= b <= r.blur_sigma[1] for b in p.blur_sigma)
        assert p.labels == (0, 1, 2, 3, 4) and len(p.means) == 5


def test_tissue_labels_from_probability_maps(labels: np.ndarray):
    ventricle = np.zeros(labels.shape, dtype=bool)
    ventricle[17:23, 19:25, 10:14] = True  # inside the WM: enclosed, so CSF
    gm = (labels == 3).astype(np.float32) * 255
    wm = ((labels == 4) & ~ventricle).astype(np.float32) * 255
    t1 = np.where(labels > 0, 50.0 + 30 * labels + np.linspace(0, 20, 40)[:, None, None], 0.0).astype(np.float32)
    out = tissue_labels(t1, gm, wm)
    assert out.dtype == np.uint8 and out.shape == labels.shape
    assert np.array_equal(out == 2, labels == 3) and np.array_equal(out == 3, (labels == 4) & ~ventricle)
    assert (out[ventricle] == 1).all() and (out == 1).sum() == ventricle.sum()
    outer = (labels == 1) | (labels == 2)  # outside the brain: head tissue by T1 quantile
    assert set(np.unique(out[outer])) == {4, 5, 6}
    assert (out[labels == 0] == 0).mean() > 0.99


def test_subdivide_splits_tissue_by_parcels_and_keeps_air(labels: np.ndarray):
    parcels = np.zeros(labels.shape, dtype=np.int32)
    parcels[:20] = 1
    parcels[20:30] = 2
    out = subdivide(labels, parcels)
    assert out.dtype == np.int32 and out.shape == labels.shape
    assert (out[labels == 0] == 0).all()  # air stays air whatever the atlas says
    # every (tissue, parcel) pair of the foreground is its own label, and only those
    pairs = {(int(t), int(p)) for t, p in zip(labels[labels > 0], parcels[labels > 0], strict=True)}
    assert len(np.unique(out[labels > 0])) == len(pairs)
    assert np.array_equal(out // 3, labels) and np.array_equal(np.where(labels > 0, out % 3, 0),
                                                               np.where(labels > 0, parcels, 0))
    with pytest.raises(ValueError, match="one shape"):
        subdivide(labels, parcels[:10])
