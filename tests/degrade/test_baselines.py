import numpy as np
import pytest
import torch
from PIL import Image

from mrisr.degrade.baselines import BASELINES, baselines_first, is_baseline, upscale_tensor, upscale_volume
from mrisr.degrade.kspace import kspace_truncate
from mrisr.degrade.resample import resize
from mrisr.io.geometry import field_of_view_corners


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("factors", [2, (3, 2), (2, 3, 1)])
def test_upscale_tensor_shapes_and_constants(method, factors):
    nsp = 3 if isinstance(factors, tuple) and len(factors) == 3 else 2
    shape = (2, 1, 6, 8, 5)[: 2 + nsp]
    x = torch.full(shape, 4.0)
    y = upscale_tensor(x, factors, method)
    fs = [factors] * nsp if isinstance(factors, int) else list(factors)
    assert y.shape == (2, 1, *[s * f for s, f in zip(shape[2:], fs, strict=True)])
    torch.testing.assert_close(y, torch.full(y.shape, 4.0))


def test_nearest_and_linear_match_torch():
    x = torch.rand(1, 1, 10, 12, dtype=torch.float64)
    torch.testing.assert_close(upscale_tensor(x, 3, "nearest"), x.repeat_interleave(3, 2).repeat_interleave(3, 3))
    ref = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(upscale_tensor(x, 2, "linear"), ref)
    x3 = torch.rand(1, 1, 6, 7, 5, dtype=torch.float64)
    ref3 = torch.nn.functional.interpolate(x3, scale_factor=2, mode="trilinear", align_corners=False)
    torch.testing.assert_close(upscale_tensor(x3, 2, "linear"), ref3)


@pytest.mark.parametrize(("kernel", "pil"), [("cubic", Image.BICUBIC), ("lanczos", Image.LANCZOS)])
@pytest.mark.parametrize("size", [(80, 96), (20, 24)])
def test_cubic_and_lanczos_match_pillow_away_from_borders(kernel, pil, size):
    a = np.random.default_rng(0).random((40, 48)).astype(np.float32)
    ref = np.asarray(Image.fromarray(a, mode="F").resize(size[::-1], pil))
    out = resize(torch.from_numpy(a).double()[None, None], size, [2, 3], kernel)[0, 0].numpy()
    b = 8
    np.testing.assert_allclose(out[b:-b, b:-b], ref[b:-b, b:-b], atol=1e-5)


def test_zerofill_baseline_inverts_kspace_truncation_of_its_output():
    y = torch.rand(1, 1, 8, 6, dtype=torch.float64)
    up = upscale_tensor(y, 2, "zerofill")
    torch.testing.assert_close(kspace_truncate(up, [2, 2], [2, 3]), y.abs(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("method", BASELINES)
def test_upscale_volume_geometry(phantom3d, method):
    vol = phantom3d
    out = upscale_volume(vol, (2, 2, 1), method)
    assert out.shape == (96, 80, 12)
    np.testing.assert_allclose(
        field_of_view_corners(out.affine, out.shape), field_of_view_corners(vol.affine, vol.shape), atol=1e-6
    )
    np.testing.assert_allclose(out.spacing, np.asarray(vol.spacing) / [2, 2, 1], rtol=1e-9)
    assert out.meta["history"][-1] == {"op": "upscale", "method": method, "factors": [2, 2, 1]}
    assert "history" not in vol.meta


def test_upscale_volume_4d_and_errors(phantom3d):
    from mrisr.errors import ConfigError
    from mrisr.io.volume import Volume

    v4 = Volume(np.stack([phantom3d.data, 2 * phantom3d.data], axis=-1), phantom3d.affine)
    out = upscale_volume(v4, (1, 1, 2), "linear")
    assert out.shape == (48, 40, 24, 2)
    np.testing.assert_allclose(out.data[..., 1], 2 * out.data[..., 0], rtol=1e-5)
    with pytest.raises(ConfigError, match="integers"):
        upscale_volume(phantom3d, (1.5, 1, 1), "linear")
    with pytest.raises(ConfigError, match="unknown upscaling"):
        upscale_volume(phantom3d, (2, 2, 1), "spline")


def test_baseline_names_declared_once_and_ordered():
    assert BASELINES == ("nearest", "linear", "bicubic", "lanczos", "zerofill")
    assert all(is_baseline(b) for b in BASELINES) and not is_baseline("model.safetensors")
    assert baselines_first(["m1", "zerofill", "bicubic", "m0", "bicubic"]) == ["bicubic", "zerofill", "m1", "m0"]


def test_baseline_names_import_without_torch():
    # CLI parsers offer these names as choices: reading them must not load the tensor code
    import subprocess
    import sys

    code = "import sys, mrisr.degrade.baselines as b; assert b.BASELINES; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("method", BASELINES)
def test_every_baseline_is_a_generator_residual(method):
    from mrisr.models import build_model
    from mrisr.models.registry import REGISTRY

    net = build_model("fast", scale=2, residual=method, **REGISTRY["fast"].tiny)
    assert net.residual == method
    assert net(torch.rand(1, 1, 8, 8)).shape == (1, 1, 16, 16)
