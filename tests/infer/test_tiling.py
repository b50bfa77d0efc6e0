"""Blended tiles (mrisr.infer.tiling): the window, and tiled == untiled for 3D patches and large 2D slices."""

import numpy as np
import pytest
import torch

from mrisr.infer.engine import run_slices
from mrisr.infer.tiling import blend_tiles, measure_reach, n_patches, patch_starts, run_patches, tile_window
from mrisr.models.registry import build_model

CPU = torch.device("cpu")


@pytest.mark.parametrize(("p", "k", "overlap"), [(16, 1, 8), (30, 2, 12), (9, 3, 4), (32, 2, 1)])
def test_window_zero_margin_ramp_and_partition_of_unity(p, k, overlap):
    w = tile_window(p, k, overlap, at_low_border=False, at_high_border=False)
    assert w.shape == (p * k,) and w.dtype == np.float32
    assert np.all((w >= 0) & (w <= 1))
    m = (overlap // 4) * k
    assert np.all(w[:m] == 0) and np.all(w[len(w) - m:] == 0)
    assert w.max() == 1.0
    # two neighbours overlapping by exactly `overlap` coarse voxels: their windows add up to 1 there
    step = (p - overlap) * k
    both = w[step:] + w[:len(w) - step]
    np.testing.assert_allclose(both, 1.0, atol=1e-6)
    # a side on the image border is not tapered
    lo = tile_window(p, k, overlap, at_low_border=True, at_high_border=False)
    assert np.all(lo[:len(lo) // 2] == 1.0)
    np.testing.assert_array_equal(lo[len(lo) // 2:], w[len(w) // 2:])


def test_window_is_smooth_not_a_step():
    w = tile_window(64, 1, 32, False, False).astype(np.float64)
    ramp = w[8:24]
    assert np.all(np.diff(ramp) > 0)          # rises monotonically over the ramp
    assert np.max(np.abs(np.diff(w))) < 0.11  # no jump: a 16-voxel ramp moves < 1/9 per voxel


def test_blend_is_a_smooth_mix_of_neighbours_not_a_crop():
    """A 'network' that returns its call number: the blend must pass smoothly from one tile to the next."""
    calls = []

    def fn(t):
        calls.append(1)
        return torch.full((t.shape[0], 1, *t.shape[2:]), float(len(calls)))

    x = torch.zeros(1, 1, 40, 8)
    out = blend_tiles(fn, x, (1, 1), (24, 8), overlap=16, reach=[None, None])[0, 0, :, 0].numpy()
    assert len(calls) == 2  # starts 0 and 16
    assert out[0] == 1.0 and out[-1] == 2.0
    assert np.all(np.diff(out) >= 0)
    inner = out[(out > 1.0) & (out < 2.0)]
    assert inner.size >= 6  # a ramp of intermediate values, not a hard seam


def test_patch_grid_covers_the_axis():
    assert patch_starts(10, 16, 4) == [0]
    assert patch_starts(40, 16, 8) == [0, 8, 16, 24]
    assert n_patches((40, 10, 16), 16, 8) == 4 * 1 * 1


def _conv3d():
    torch.manual_seed(0)
    # receptive field 5.5 coarse voxels (head 1, block 2, trunk 1, upsampling conv 1, tail 0.5)
    return build_model("resnet3d", scale=2, channels=4, n_blocks=1, res_scale=1.0).eval()


def test_3d_tiled_equals_untiled(rng):
    model = _conv3d()
    vol = rng.random((40, 36, 34), dtype=np.float32)
    with torch.no_grad():
        whole = model(torch.from_numpy(vol)[None, None])[0, 0].numpy()
    before = vol.copy()
    tiled = run_patches(model, vol, patch_size=32, overlap=24, batch_size=3, device=CPU, engine="torch")
    np.testing.assert_array_equal(vol, before)
    assert tiled.shape == (80, 72, 68) and tiled.dtype == np.float32
    assert n_patches(vol.shape, 32, 24) == 8
    np.testing.assert_allclose(tiled, whole, atol=1e-4)  # borders included (zero padding on both)
    # a small overlap (margin 1 < receptive field) is no longer exact in the seams but still close
    # the zero margin is the measured reach (11 output voxels), so an overlap of 12 coarse voxels is enough
    snug = run_patches(model, vol, patch_size=16, overlap=12, batch_size=8, device=CPU, engine="torch")
    np.testing.assert_allclose(snug, whole, atol=1e-4)
    rough = run_patches(model, vol, patch_size=20, overlap=4, batch_size=4, device=CPU, engine="torch")
    assert 1e-4 < np.abs(rough - whole).max() < 0.5 * np.abs(whole).max()


def test_3d_writes_into_out():
    model = _conv3d()
    vol = np.random.default_rng(1).random((12, 10, 9), dtype=np.float32)
    out = np.full((24, 20, 18), np.nan, dtype=np.float32)
    got = run_patches(model, vol, 8, 4, 2, CPU, engine="torch", out=out)
    assert got is out and np.all(np.isfinite(out))
    with pytest.raises(ValueError, match="C-contiguous float32"):
        run_patches(model, vol, 8, 4, 2, CPU, out=np.zeros((24, 20, 17), np.float32))


def test_2d_large_slices_tiled_equal_untiled_small_net(rng):
    torch.manual_seed(0)
    # receptive field 10 coarse pixels (9x9 head 4, block 2, trunk 1, upsampling 1, 9x9 tail on the fine grid 2)
    model = build_model("srresnet", scale=2, channels=8, n_blocks=1, batch_norm=False).eval()
    stack = rng.random((2, 100, 90), dtype=np.float32)
    whole = run_slices(model, stack, 4, CPU, engine="torch")
    tiled = run_slices(model, stack, 4, CPU, engine="torch", tile=60, tile_overlap=40)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    with torch.no_grad():
        ref = model(torch.from_numpy(stack)[:, None])[:, 0].numpy()
    np.testing.assert_allclose(whole, ref, atol=1e-5)


def test_2d_tiling_of_the_shipped_default_model(rng):
    """kspace-x2 reaches 16 coarse pixels; its residual zero-fill and data consistency (FFTs over the slice)
    run on the whole slice after the tiles are blended, so tiling changes nothing."""
    from mrisr.models.modelfile import load_model_file

    model, _ = load_model_file("kspace-x2")
    stack = rng.random((1, 160, 140), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(stack)[:, None])[:, 0].numpy()
    tiled = run_slices(model, stack, 2, CPU, engine="torch", tile=96, tile_overlap=64)
    np.testing.assert_allclose(tiled, ref, atol=1e-4)


@pytest.mark.parametrize(("name", "args", "reach"), [
    # 5 coarse 3x3x3 convs before the sub-pixel shuffle (x2), one after: 5 * 2 + 1
    ("resnet3d", {"scale": 2, "channels": 4, "n_blocks": 1}, 11),
    # 9x9 head (4) + 2 + 1 + 1 coarse 3x3, then a 9x9 tail on the fine grid: 8 * 2 + 4
    ("srresnet", {"scale": 2, "channels": 8, "n_blocks": 1, "batch_norm": False}, 20),
])
def test_measure_reach_matches_the_architecture(rng, name, args, reach):
    torch.manual_seed(0)
    model = build_model(name, **args).eval()
    dims = model.spatial_dims
    x = torch.from_numpy(rng.random((1, 1, *([26] * dims)), dtype=np.float32))
    with torch.no_grad():
        got = measure_reach(model.reconstruct, x, model.factors, [25] * dims)
    assert got == [reach] * dims
    with torch.no_grad():  # a crop too small to see the whole reach
        assert measure_reach(model.reconstruct, x, model.factors, [9] * dims) == [None] * dims


def test_blend_tiles_checks_out_shape():
    with pytest.raises(ValueError, match="expected"):
        blend_tiles(lambda t: t, torch.zeros(1, 1, 8, 8), (1, 1), (4, 4), 2, out=torch.zeros(1, 1, 8, 7))
