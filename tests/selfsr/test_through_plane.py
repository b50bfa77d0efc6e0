"""Through-plane inference: output grid and affine against independent arithmetic; fusion; memory slabs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrisr.degrade.resample import resample_axis
from mrisr.errors import ConfigError, InputError
from mrisr.infer.through_plane import output_slices, through_plane_array, upscale_through_plane
from mrisr.io.geometry import field_of_view_corners
from mrisr.io.volume import Volume
from mrisr.models.registry import build_model
from mrisr.selfsr.pipeline import NORMALISATION, initial_network
from tests.conftest import oblique_affine


def identity_net() -> torch.nn.Module:
    """The untrained default network: its last layer is zero, so it returns its input (cubic interpolation)."""
    net, _ = initial_network(None, 0)
    return net.eval()


def expected_affine(affine: np.ndarray, axis: int, n: int, n_out: int) -> np.ndarray:
    """Independent arithmetic: the new voxel size along ``axis`` is ``n / n_out`` old voxels, and new voxel 0's
    centre lies half a new voxel inside the old field of view's edge (old index -0.5)."""
    a = np.asarray(affine, dtype=np.float64).copy()
    step = n / n_out
    first = -0.5 + step / 2.0
    a[:3, 3] = affine[:3, 3] + affine[:3, axis] * first
    a[:3, axis] = affine[:3, axis] * step
    return a


@pytest.mark.parametrize(("axis", "spacing", "target"), [(2, 3.3, 1.0), (0, 4.0, 1.0), (2, 5.0, 0.8)])
def test_grid_and_affine(axis: int, spacing: float, target: float) -> None:
    sp = [1.0, 1.0, 1.0]
    sp[axis] = spacing
    shape = [20, 18, 16]
    shape[axis] = 9
    rng = np.random.default_rng(0)
    vol = Volume(rng.random(shape).astype(np.float32) * 100, oblique_affine(tuple(sp)))
    out = upscale_through_plane(vol, (identity_net(), {"normalisation": NORMALISATION}), target_spacing=target)
    n_out = round(9 * spacing / target)
    assert out.spatial_shape[axis] == n_out
    assert [out.spatial_shape[a] for a in range(3) if a != axis] == [shape[a] for a in range(3) if a != axis]
    np.testing.assert_allclose(out.affine, expected_affine(vol.affine, axis, 9, n_out), atol=1e-9)
    np.testing.assert_allclose(out.spacing[axis], 9 * spacing / n_out, rtol=1e-9)
    # same field of view: the 8 outer corners coincide
    np.testing.assert_allclose(field_of_view_corners(out.affine, out.shape), field_of_view_corners(vol.affine, vol.shape),
                               atol=1e-9)
    assert out.meta["history"][-1]["op"] == "upscale"


def test_identity_network_gives_cubic_interpolation() -> None:
    """With a network that returns its input, both orientations are cubic interpolation along z: the fusion too."""
    rng = np.random.default_rng(1)
    data = rng.random((12, 10, 6)).astype(np.float32)
    got = through_plane_array(data, identity_net(), 2, (1.0, 1.0, 3.3), 20, torch.device("cpu"), slab=5,
                              batch_size=3)
    want = resample_axis(torch.from_numpy(data), 2, output_slices(6, 3.3, 1.0), "cubic").numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_slab_size_does_not_change_the_result() -> None:
    rng = np.random.default_rng(2)
    data = rng.random((11, 9, 5)).astype(np.float32)
    torch.manual_seed(0)
    net = build_model("srresnet", scale=1, channels=4, n_blocks=1, batch_norm=False, residual="bicubic").eval()
    a = through_plane_array(data, net, 2, (1.0, 1.0, 4.0), 20, torch.device("cpu"), slab=1, batch_size=1)
    b = through_plane_array(data, net, 2, (1.0, 1.0, 4.0), 20, torch.device("cpu"), slab=16, batch_size=8)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_anisotropic_in_plane_uses_each_axis_spacing() -> None:
    """In-plane 0.5 x 1 mm, slices 3 mm: the slices across axis 0 run on a 0.5 mm working grid, those across
    axis 1 on 1 mm; with the identity network both are cubic, resampled onto the 0.5 mm target."""
    rng = np.random.default_rng(3)
    data = rng.random((8, 6, 5)).astype(np.float32)
    got = through_plane_array(data, identity_net(), 2, (0.5, 1.0, 3.0), 30, torch.device("cpu"))
    t = torch.from_numpy(data)
    fine = resample_axis(t, 2, 30, "cubic")
    coarse = resample_axis(resample_axis(t, 2, 15, "cubic"), 2, 30, "cubic")
    np.testing.assert_allclose(got, (0.5 * fine + 0.5 * coarse).numpy(), atol=1e-5)


def test_magnitude_stays_nonnegative_and_errors() -> None:
    vol = Volume(np.zeros((10, 10, 4), np.float32), np.diag([1.0, 1.0, 4.0, 1.0]))
    vol.data[4:6, 4:6, 1] = 100.0  # ringing of cubic interpolation goes below 0 next to the spike
    out = upscale_through_plane(vol, (identity_net(), {"normalisation": NORMALISATION}))
    assert out.data.min() >= 0 and out.meta["history"][-1]["negative_voxels_set_to_zero"] > 0
    with pytest.raises(ConfigError, match="positive"):
        upscale_through_plane(vol, (identity_net(), {}), target_spacing=0.0)
    with pytest.raises(InputError, match="3D"):
        upscale_through_plane(Volume(np.zeros((5, 5), np.float32), np.eye(4)), (identity_net(), {}))


def test_constant_slices_skip_the_network() -> None:
    """Empty background slices keep their value; the others go through the network as before."""
    rng = np.random.default_rng(4)
    data = np.zeros((10, 9, 5), np.float32)
    data[3:7, 2:7] = rng.random((4, 5, 5))
    torch.manual_seed(0)
    net = build_model("srresnet", scale=1, channels=4, n_blocks=1, batch_norm=False, residual="bicubic").eval()
    got = through_plane_array(data, net, 2, (1.0, 1.0, 4.0), 20, torch.device("cpu"))
    # the slices across axis 0 at 0..2 and across axis 1 at 0..1 are all zero: those lines stay exactly 0
    assert np.all(got[:3, :2] == 0)
    assert np.any(got[4, 4] != 0)
