"""Held-out slabs keep every voxel's world position; small scans stay whole."""

from __future__ import annotations

import numpy as np
import pytest

from mrisr.data.heldout import central_slabs
from mrisr.io.volume import Volume


def _world(affine: np.ndarray, ijk: tuple[int, int, int]) -> np.ndarray:
    return affine[:3, :3] @ np.asarray(ijk, dtype=float) + affine[:3, 3]


def test_slabs_keep_world_positions(phantom3d):
    vol = Volume(np.random.default_rng(0).random((20, 18, 16)).astype(np.float32), phantom3d.affine, {})
    slabs = central_slabs(vol, 4)
    assert set(slabs) == {"axial", "coronal", "sagittal"}
    assert slabs["axial"].shape == (20, 18, 4)
    assert slabs["coronal"].shape == (20, 16, 4)
    assert slabs["sagittal"].shape == (18, 16, 4)
    starts = {"axial": (2, 16 // 2 - 2), "coronal": (1, 18 // 2 - 2), "sagittal": (0, 20 // 2 - 2)}
    for view, slab in slabs.items():
        axis, lo = starts[view]
        others = [a for a in range(3) if a != axis]
        for ijk in [(0, 0, 0), (3, 5, 2), (slab.shape[0] - 1, slab.shape[1] - 1, 3)]:
            src = [0, 0, 0]
            src[others[0]], src[others[1]], src[axis] = ijk[0], ijk[1], lo + ijk[2]
            assert slab.data[ijk] == vol.data[tuple(src)]
            np.testing.assert_allclose(_world(slab.affine, ijk), _world(vol.affine, tuple(src)), atol=1e-9)


def test_small_and_2d_scans_are_kept_whole(phantom2d, phantom3d):
    assert list(central_slabs(phantom2d, 8)) == ["whole"]
    whole = central_slabs(phantom3d, 12)["whole"]  # 12 slices: not more than the slab
    np.testing.assert_array_equal(whole.data, phantom3d.data)
    frames = Volume(np.stack([phantom3d.data, phantom3d.data * 2], -1), phantom3d.affine, {})
    assert central_slabs(frames, 4)["axial"].shape == (48, 40, 4)  # the first frame
    with pytest.raises(ValueError, match="slab size"):
        central_slabs(phantom3d, 0)
