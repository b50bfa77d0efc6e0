"""Contract test over every registered network: shapes, finite values, gradients, save -> load -> same output."""

from __future__ import annotations

import math

import pytest
import torch

from mrisr.models import build_model, list_models, load_model_file, save_model_file
from mrisr.models.registry import REGISTRY

LR_2D = (6, 5)  # not square, so a transposed axis would show
LR_3D = (4, 5, 3)


def _generator_cases():
    for name in list_models("generator"):
        entry = REGISTRY[name]
        for scale in entry.scales:
            for i, variant in enumerate(({}, *entry.variants)):
                if scale == 1 and variant.get("upsampling") == "subpixel":
                    continue  # learned upsampling needs a factor > 1 (refused, see test below)
                yield pytest.param(name, scale, variant, id=f"{name}-x{scale}-v{i}")


def _first_weight(model: torch.nn.Module) -> torch.nn.Parameter:
    return next(p for _, p in model.named_parameters() if p.ndim >= 3)


def _save_load_same(model, x, tmp_path):
    model.eval()
    with torch.no_grad():
        y1 = model(x)
    path = save_model_file(tmp_path / "net.safetensors", model, meta={"degradation": "test"})
    loaded, meta = load_model_file(path)
    assert not loaded.training
    with torch.no_grad():
        y2 = loaded(x)
    assert torch.equal(y1, y2)
    return meta


@pytest.mark.parametrize(("name", "scale", "variant"), list(_generator_cases()))
def test_generator_contract(name, scale, variant, tmp_path):
    torch.manual_seed(0)
    entry = REGISTRY[name]
    model = build_model(name, scale=scale, **{**entry.tiny, **variant})
    dims = entry.spatial_dims[0]
    assert model.spatial_dims == dims
    lr = LR_2D if dims == 2 else LR_3D
    factors = model.factors
    assert len(factors) == dims and max(factors) == scale
    if variant.get("anisotropic"):
        assert factors == (1, 1, scale)
    else:
        assert factors == (scale,) * dims
    x = torch.rand(2, model.in_channels, *lr)
    model.train()
    y = model(x)
    assert y.shape == (2, 1, *(n * f for n, f in zip(lr, factors, strict=True)))
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    g = _first_weight(model).grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, "no gradient at the first layer"
    meta = _save_load_same(model, x, tmp_path)
    assert meta["arch"] == name and meta["scale"] == scale and meta["factors"] == list(factors)
    assert meta["context_slices"] == model.in_channels // 2
    assert meta["num_parameters"] == sum(p.numel() for p in model.parameters())


def _discriminator_cases():
    for name in list_models("discriminator"):
        entry = REGISTRY[name]
        for dims in entry.spatial_dims:
            for i, variant in enumerate(({}, *entry.variants)):
                yield pytest.param(name, dims, variant, id=f"{name}-{dims}d-v{i}")


@pytest.mark.parametrize(("name", "dims", "variant"), list(_discriminator_cases()))
def test_discriminator_contract(name, dims, variant, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, spatial_dims=dims, **{**REGISTRY[name].tiny, **variant})
    size = (16,) * dims
    x = torch.rand(3, 1, *size)
    model.train()
    y = model(x)
    assert y.shape[0] == 3 and y.shape[1] == 1 and torch.isfinite(y).all()
    if name == "patch_discriminator":
        n_down = REGISTRY[name].tiny["n_down"]
        assert y.shape[2:] == tuple(s // 2 ** n_down for s in size)
    else:
        assert y.shape == (3, 1)
    y.mean().backward()
    g = _first_weight(model).grad if name != "patch_discriminator" else next(model.parameters()).grad
    assert g is not None and g.abs().sum() > 0
    meta = _save_load_same(model, x, tmp_path)
    assert meta["kind"] == "discriminator" and "scale" not in meta


def test_every_registered_network_is_covered():
    gens = {c.values[0] for c in _generator_cases()}
    discs = {c.values[0] for c in _discriminator_cases()}
    assert gens | discs == set(list_models())
    assert {"srresnet", "rrdbnet", "pediatric", "fast"} <= gens and {"mdcsrn", "resnet3d"} <= gens
    for name in gens:
        assert {2, 3, 4} <= set(REGISTRY[name].scales)


def test_context_channels_change_the_output():
    torch.manual_seed(0)
    model = build_model("fast", scale=2, in_channels=3, **REGISTRY["fast"].tiny).eval()
    x = torch.rand(1, 3, 8, 8)
    x2 = x.clone()
    x2[:, 0] = torch.rand(8, 8)  # a different neighbour slice
    with torch.no_grad():
        assert not torch.equal(model(x), model(x2))


def test_pediatric_output_is_tanh_bounded():
    model = build_model("pediatric", scale=2, **REGISTRY["pediatric"].tiny).eval()
    with torch.no_grad():
        y = model(100 * torch.randn(1, 1, 8, 8))
    assert y.abs().max() <= 1.0


def test_residual_output_starts_near_baseline():
    """With residual=bicubic and a zeroed last layer the network returns exactly the baseline."""
    from mrisr.degrade.baselines import upscale_tensor

    model = build_model("srresnet", scale=3, residual="bicubic", **REGISTRY["srresnet"].tiny).eval()
    torch.nn.init.zeros_(model.tail.weight)
    torch.nn.init.zeros_(model.tail.bias)
    x = torch.rand(1, 1, 7, 6)
    with torch.no_grad():
        assert torch.allclose(model(x), upscale_tensor(x, (3, 3), "bicubic"), atol=1e-6)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("srresnet", {"scale": 5}, "supports scales"),
        ("srresnet", {"in_channels": 2}, "odd"),
        ("fast", {"residual": "spline"}, "residual"),
        ("fast", {"scale": 1, "data_consistency": True}, "data_consistency"),
        ("mdcsrn", {"scale": 1, "upsampling": "subpixel"}, "subpixel"),
        ("srresnet", {"depth": 3}, "no argument"),
        ("nosuchnet", {}, "unknown network"),
    ],
)
def test_bad_configurations_are_config_errors(name, kwargs, message):
    from mrisr.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        build_model(name, **kwargs)


def test_default_sizes_are_the_published_ones():
    # SRResNet-16 x4 with 3 colour channels has ~1.5 M parameters (Ledig et al.); ours is 1-channel.
    n = sum(p.numel() for p in build_model("srresnet", scale=4).parameters())
    assert 1.4e6 < n < 1.6e6
    # ESRGAN's RRDBNet (23 blocks, 64 ch, growth 32) has ~16.7 M parameters.
    n = sum(p.numel() for p in build_model("rrdbnet", scale=4).parameters())
    assert 16.0e6 < n < 17.0e6
    # mDCSRN is light (well under 1 M parameters).
    n = sum(p.numel() for p in build_model("mdcsrn", scale=2).parameters())
    assert n < 1e6
    assert math.isfinite(n)
