"""Contract test over every degradation: shape, affine (field of view kept), determinism, history."""

import numpy as np
import pytest

from mrisr.degrade.chain import build_degradation
from mrisr.degrade.registry import STEPS
from mrisr.degrade.step import Choice, Uniform
from mrisr.errors import ConfigError
from mrisr.io.geometry import field_of_view_corners

SPECS = {
    "kspace": ("kspace:scale=2,window=hamming", (24, 20, 12)),
    "bicubic": ("bicubic:scale=4", (12, 10, 12)),
    "block": ("block:scale=2", (24, 20, 12)),
    "slice": ("slice:scale=3,profile=rect", (48, 40, 4)),
    "noise": ("noise:snr=20", (48, 40, 12)),
}


def test_every_method_has_a_contract_case():
    assert set(SPECS) == set(STEPS)


@pytest.mark.parametrize("method", sorted(SPECS))
def test_degradation_contract(phantom3d, method):
    spec, shape = SPECS[method]
    deg = build_degradation(spec + ";noise:snr=5..50")
    out = deg(phantom3d, seed=7)
    assert out.shape == shape
    assert np.isfinite(out.data).all() and out.data.dtype == np.float32
    np.testing.assert_allclose(
        field_of_view_corners(out.affine, out.shape), field_of_view_corners(phantom3d.affine, phantom3d.shape), atol=1e-6
    )
    factors = deg.factors(3)
    np.testing.assert_allclose(np.asarray(out.spacing), np.asarray(phantom3d.spacing) * factors, rtol=1e-9)
    again = deg(phantom3d, seed=7)
    np.testing.assert_array_equal(out.data, again.data)
    other = deg(phantom3d, seed=8)
    assert not np.array_equal(out.data, other.data)
    hist = out.meta["history"]
    assert [h["method"] for h in hist] == [method, "noise"]
    assert all(h["op"] == "degrade" and h["seed"] == 7 for h in hist)
    assert 5 <= hist[-1]["snr"] <= 50 and hist[-1]["sigma"] > 0
    assert "history" not in phantom3d.meta


@pytest.mark.parametrize("method", sorted(SPECS))
def test_apply_array_2d(phantom2d, method):
    spec, _ = SPECS[method]
    spec = spec.replace("slice:scale=3", "slice:scale=2")
    deg = build_degradation(spec)
    out, params = deg.apply_array(phantom2d.data, np.random.default_rng(0))
    assert out.shape == tuple(s // f for s, f in zip(phantom2d.shape, deg.factors(2), strict=True))
    assert params["degradation"] == deg.spec
    assert params["steps"][0]["method"] == method


def test_4d_volume_frames_share_parameters(phantom3d):
    from mrisr.io.volume import Volume

    v4 = Volume(np.stack([phantom3d.data] * 3, axis=-1), phantom3d.affine)
    out = build_degradation("kspace:scale=2,window=hamming|tukey")(v4, seed=1)
    assert out.shape == (24, 20, 12, 3)
    np.testing.assert_allclose(out.data[..., 0], out.data[..., 2])


def test_indivisible_volume_is_centre_cropped(phantom3d):
    vol = phantom3d.with_data(phantom3d.data[:47, :39])
    out = build_degradation("kspace:scale=2")(vol, seed=0)
    assert out.shape == (23, 19, 12)
    crop = out.meta["history"][0]
    assert crop == {"op": "crop", "start": [0, 0, 0], "shape": [46, 38, 12]}
    # the coarse grid covers the cropped field of view
    cropped_fov = field_of_view_corners(phantom3d.affine, (46, 38, 12))
    np.testing.assert_allclose(field_of_view_corners(out.affine, out.shape), cropped_fov, atol=1e-6)


def test_kspace_degradation_matches_tensor_function(phantom3d):
    import torch

    from mrisr.degrade.kspace import kspace_truncate

    out = build_degradation("kspace:scale=2,axes=all")(phantom3d, seed=0)
    ref = kspace_truncate(torch.from_numpy(phantom3d.data), [2, 2, 2], [0, 1, 2])
    np.testing.assert_allclose(out.data, ref.numpy(), atol=1e-3)


def test_spec_forms_agree():
    a = build_degradation("kspace:scale=2,window=hamming|none;noise:snr=20..40")
    b = build_degradation([{"method": "kspace", "scale": 2, "window": {"choice": ["hamming", None]}},
                           {"noise": {"snr": {"uniform": [20, 40]}}}])
    c = build_degradation("- kspace: {scale: 2, window: hamming|none}\n- noise: {snr: 20..40}")
    d = build_degradation({"steps": ["kspace:window=hamming|none", "noise:snr=20..40"]}, scale=2)
    assert a == b == c == d
    assert a.steps[0].window == Choice(("hamming", None))
    assert a.steps[1].snr == Uniform(20.0, 40.0)
    assert build_degradation(a.spec) == a


def test_yaml_file(tmp_path):
    p = tmp_path / "deg.yaml"
    p.write_text("steps:\n  - method: slice\n    scale: 2\n    gap: 0.5\n")
    deg = build_degradation(str(p))
    assert deg.factors(3) == (1, 1, 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kspace", "needs a scale"),
        ("kspace:scale=2,windw=hamming", "unknown parameter 'windw'"),
        ("kspace:scale=1.5", "integer"),
        ("kspace:scale=2,window=hann", "unknown value 'hann'"),
        ("blur:scale=2", "unknown degradation"),
        ("noise:snr=10,sigma=2", "exactly one"),
        ("noise:snr=ten", "number"),
        ("noise:snr=40..20", "empty"),
        ("slice:scale=2,thickness=2,gap=1", "not both"),
        ("kspace:scale=2,axes=x", "spatial axes"),
        ("block:scale=2,grid=coarse|original", "cannot be random"),
        ("", "empty"),
        # caught when the spec is built, not when the first volume is degraded (or silently NaN)
        ("noise:snr=0", r"snr must be > 0"),
        ("noise:snr=-1..20", r"snr must be > 0"),
        ("noise:snr=nan", "finite"),
        ("noise:snr=5..inf", "finite"),
        ("noise:sigma=-1", r"sigma must be >= 0"),
        ("slice:scale=3,gap=3", r"gap must be >= 0 and < 3"),
        ("slice:scale=3,thickness=-1..2", r"thickness must be > 0"),
        ("kspace:scale=2,axes=", "at least one spatial axis"),
        ({"method": "kspace", "scale": 2, "steps": 3}, "steps"),
        ("no/such/chain.yaml", "degradation file no/such/chain.yaml not found"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        build_degradation(spec)


def test_steps_may_be_a_spec_string():
    assert build_degradation({"steps": "kspace:scale=2;noise:snr=20"}).spec == "kspace:scale=2;noise:snr=20.0"


def test_default_scale_fills_only_missing_scales():
    deg = build_degradation("kspace;bicubic:scale=3,axes=2", default_scale=2)
    assert deg.spec == "kspace:scale=2;bicubic:scale=3,axes=2" and deg.factors(3) == (2, 2, 3)


def test_scale_conflict():
    with pytest.raises(ConfigError, match="conflicts"):
        build_degradation("kspace:scale=2", scale=3)


def test_apply_array_noise_rng_draws_noise_apart_from_parameters(phantom2d):
    deg = build_degradation("kspace:scale=2,window=hamming|tukey|fermi;noise:snr=5..50")
    x = phantom2d.data
    a, pa = deg.apply_array(x, np.random.default_rng(1), noise_rng=np.random.default_rng(10))
    b, pb = deg.apply_array(x, np.random.default_rng(1), noise_rng=np.random.default_rng(11))
    assert pa == pb  # same volume seed -> same window and SNR
    assert not np.array_equal(a, b)  # another slice -> another noise field
    c, _ = deg.apply_array(x, np.random.default_rng(1))
    d, _ = deg.apply_array(x, np.random.default_rng(1), noise_rng=None)
    np.testing.assert_array_equal(c, d)  # default: one generator, as before


def test_apply_array_signal_sets_the_snr_reference(phantom2d):
    deg = build_degradation("noise:snr=10")
    assert deg.uses_snr and not build_degradation("noise:sigma=1").uses_snr
    _, p = deg.apply_array(phantom2d.data, np.random.default_rng(0), signal=2.0)
    assert p["steps"][0]["sigma"] == pytest.approx(0.2)
