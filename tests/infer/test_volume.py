"""upscale_with_model: geometry, slicing, normalisation round trip, context slices, 3D patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrisr.degrade.baselines import upscale_volume
from mrisr.errors import ConfigError, InputError
from mrisr.infer import upscale_with_model
from mrisr.infer.volume import scan_factors
from mrisr.io.geometry import field_of_view_corners, rescaled_affine
from mrisr.io.volume import Volume
from mrisr.models import build_model, save_model_file
from mrisr.models.registry import REGISTRY

NO_CLIP = {"method": "percentile", "low_percentile": 1.0, "high_percentile": 99.0, "clip": False}


def _bicubic_net(scale=2, in_channels=1):
    """A 2D network whose output is exactly its bicubic baseline (zeroed last layer, residual=bicubic)."""
    model = build_model("fast", scale=scale, residual="bicubic", in_channels=in_channels, **REGISTRY["fast"].tiny)
    torch.nn.init.zeros_(model.tail[0].weight)
    torch.nn.init.zeros_(model.tail[0].bias)
    return model.eval()


@pytest.fixture
def bicubic_file(tmp_path):
    return save_model_file(tmp_path / "bicubic.safetensors", _bicubic_net(), meta={"normalisation": NO_CLIP})


@pytest.mark.parametrize("axis", [2, 0, 1])
def test_2d_model_on_3d_volume_equals_the_baseline_in_input_units(phantom3d, bicubic_file, axis):
    out = upscale_with_model(phantom3d, str(bicubic_file), scale=2, axis=axis)
    factors = [2, 2, 2]
    factors[axis] = 1
    ref = upscale_volume(phantom3d, factors, "bicubic")
    assert out.shape == ref.shape == tuple(n * f for n, f in zip(phantom3d.shape, factors, strict=True))
    np.testing.assert_allclose(out.affine, ref.affine, atol=1e-9)
    np.testing.assert_allclose(field_of_view_corners(out.affine, out.shape),
                               field_of_view_corners(phantom3d.affine, phantom3d.shape), atol=1e-4)
    # normalisation applied and inverted: the output is in the input's units (phantom in [0, 1000])
    np.testing.assert_allclose(out.data, ref.data, atol=1e-3 * 1000)
    rec = out.meta["history"][-1]
    assert rec["op"] == "upscale" and rec["method"] == "model" and rec["factors"] == factors and rec["axis"] == axis


def test_2d_and_4d_volumes(phantom2d, phantom3d, bicubic_file):
    out = upscale_with_model(phantom2d, bicubic_file)
    assert out.shape == (128, 128)
    np.testing.assert_allclose(out.data, upscale_volume(phantom2d, [2, 2], "bicubic").data, atol=1e-3)
    frames = np.stack([phantom3d.data, 0.5 * phantom3d.data[::-1]], axis=-1)
    vol4 = Volume(frames, phantom3d.affine, {"time_spacing": 0.04})
    out4 = upscale_with_model(vol4, bicubic_file, batch_size=5)
    assert out4.shape == (96, 80, 12, 2)
    ref = upscale_volume(vol4, [2, 2, 1], "bicubic")
    np.testing.assert_allclose(out4.data, ref.data, atol=1e-3 * 1000)


def test_clipping_normalisation_is_honoured(phantom3d, tmp_path):
    path = save_model_file(tmp_path / "m", _bicubic_net(),
                           meta={"normalisation": {"method": "fixed", "low": 0.0, "high": 500.0, "clip": True}})
    out = upscale_with_model(phantom3d, path)
    # the network sees the input clipped at 500; what clipping removed comes back linearly interpolated,
    # so the output keeps the input's bright range: out = bicubic(clip(x)) + linear(x - clip(x))
    clipped = phantom3d.with_data(np.clip(phantom3d.data, 0.0, 500.0))
    excess = phantom3d.with_data(phantom3d.data - clipped.data)
    ref = upscale_volume(clipped, [2, 2, 1], "bicubic").data + upscale_volume(excess, [2, 2, 1], "linear").data
    np.testing.assert_allclose(out.data, ref, atol=1e-3 * 500)
    assert phantom3d.data.max() > 900 and out.data.max() > 0.9 * phantom3d.data.max()
    assert out.meta["history"][-1]["clipped_intensities"].startswith("restored")


def test_default_percentile_clipping_keeps_the_brightest_voxels(tmp_path):
    # one bright 2x2 lesion (0.25% of the voxels): above the 99.5th percentile, it must not be flattened to it
    data = np.full((40, 40, 4), 100.0, dtype=np.float32)
    data[10:12, 20:22, :] = 5000.0
    vol = Volume(data, np.diag([0.8, 0.8, 3.0, 1.0]))
    out = upscale_with_model(vol, (_bicubic_net(), {}))
    assert out.data[20:26, 40:46].max() == pytest.approx(5000.0, rel=0.02)
    assert np.abs(out.data[:, :10] - 100.0).max() < 1e-2


def test_a_model_that_outputs_nan_is_reported(phantom3d):
    model = _bicubic_net()
    torch.nn.init.constant_(model.tail[0].bias, float("nan"))
    with pytest.raises(InputError, match="NaN or Inf"):
        upscale_with_model(phantom3d, (model, {}))


def test_context_slices_are_neighbours_with_replicated_ends(phantom3d):
    torch.manual_seed(0)
    model = build_model("fast", scale=2, in_channels=5, **REGISTRY["fast"].tiny).eval()
    out = upscale_with_model(phantom3d, (model, {"normalisation": {"method": "none"}}), axis=2, batch_size=4)
    data = torch.from_numpy(phantom3d.data)
    nz = data.shape[2]
    for k in (0, 1, 6, nz - 1):
        idx = [min(max(k + d, 0), nz - 1) for d in (-2, -1, 0, 1, 2)]
        x = data[:, :, idx].permute(2, 0, 1)[None]
        with torch.no_grad():
            ref = model(x)[0, 0].numpy()
        np.testing.assert_allclose(out.data[:, :, k], ref, rtol=1e-5, atol=1e-3)


def test_3d_patches_equal_the_whole_volume():
    torch.manual_seed(0)
    model = build_model("resnet3d", scale=2, channels=4, n_blocks=1).eval()
    vol = Volume(np.random.default_rng(0).random((20, 18, 14)).astype(np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))
    ref = (model, {"normalisation": {"method": "none"}})
    whole = upscale_with_model(vol, ref, patch_size=64)
    tiled = upscale_with_model(vol, ref, patch_size=16, overlap=12, batch_size=3)
    assert whole.shape == (40, 36, 28)
    np.testing.assert_allclose(tiled.data, whole.data, atol=1e-5)
    with torch.no_grad():
        direct = model(torch.from_numpy(vol.data)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(whole.data, direct, atol=1e-5)
    assert whole.spacing == pytest.approx((0.5, 0.5, 1.0))


@pytest.mark.parametrize("axis", [2, 0])
def test_anisotropic_3d_model_refines_the_through_plane_axis(phantom3d, tmp_path, axis):
    model = build_model("mdcsrn", scale=3, anisotropic=True, **REGISTRY["mdcsrn"].tiny)
    path = save_model_file(tmp_path / "m", model)
    out = upscale_with_model(phantom3d, path, axis=axis, patch_size=8, overlap=2)
    factors = [1, 1, 1]
    factors[axis] = 3
    assert out.shape == tuple(n * f for n, f in zip(phantom3d.shape, factors, strict=True))
    assert np.isfinite(out.data).all()
    np.testing.assert_allclose(out.spacing, np.asarray(phantom3d.spacing) / factors, rtol=1e-6)
    # the model says it is through-plane; the affine refines only that axis, with the field of view kept
    np.testing.assert_allclose(out.affine, rescaled_affine(phantom3d.affine, factors), atol=1e-12)
    np.testing.assert_allclose(field_of_view_corners(out.affine, out.shape),
                               field_of_view_corners(phantom3d.affine, phantom3d.shape), atol=1e-6)
    rec = out.meta["history"][-1]
    assert rec["geometry"] == "through_plane" and rec["factors"] == factors


def test_the_model_geometry_decides_the_refined_axes_not_the_factors(phantom3d):
    # a scale-1 3D network has factors (1, 1, 1) either way: only its stated geometry tells them apart
    for anisotropic in (False, True):
        model = build_model("resnet3d", scale=1, anisotropic=anisotropic, channels=2, n_blocks=1)
        out = upscale_with_model(phantom3d, (model, {}), patch_size=8, overlap=2)
        assert out.meta["history"][-1]["geometry"] == ("through_plane" if anisotropic else "isotropic")
    assert scan_factors(build_model("resnet3d", scale=2, anisotropic=True), 3, 0) == [2, 1, 1]
    assert scan_factors(build_model("resnet3d", scale=2), 3, 0) == [2, 2, 2]
    assert scan_factors(build_model("fast", scale=3), 3, 1) == [3, 1, 3]


def test_errors(phantom2d, phantom3d, bicubic_file, tmp_path):
    with pytest.raises(ConfigError, match="upscales by 2"):
        upscale_with_model(phantom3d, bicubic_file, scale=3)
    with pytest.raises(ConfigError, match="unknown inference option"):
        upscale_with_model(phantom3d, bicubic_file, tile=3)
    with pytest.raises(ConfigError, match="axis"):
        upscale_with_model(phantom3d, bicubic_file, axis=3)
    m3 = save_model_file(tmp_path / "m3", build_model("resnet3d", channels=2, n_blocks=1))
    with pytest.raises(InputError, match="3D network"):
        upscale_with_model(phantom2d, m3)
    disc = save_model_file(tmp_path / "d", build_model("patch_discriminator", channels=2, n_down=1))
    with pytest.raises(ConfigError, match="not a super-resolution generator"):
        upscale_with_model(phantom2d, disc)
    bad = Volume(np.full((8, 8), np.nan, dtype=np.float32), np.eye(4))
    with pytest.raises(InputError, match="NaN"):
        upscale_with_model(bad, bicubic_file)


def test_auto_device_and_progress(phantom2d, bicubic_file):
    out = upscale_with_model(phantom2d, bicubic_file, device="auto", progress=True)
    assert out.shape == (128, 128)
