"""resampled_volume: the grid factors are the one value behind the affine, the shape check and the history."""

from __future__ import annotations

import numpy as np
import pytest

from mrisr.degrade.grid import resampled_volume
from mrisr.io.geometry import field_of_view_corners, rescaled_affine


def test_affine_and_recorded_factors_come_from_the_factors(phantom3d):
    data = np.zeros((96, 40, 36), dtype=np.float32)
    out = resampled_volume(phantom3d, data, [2, 1, 3], {"op": "upscale", "method": "test"})
    np.testing.assert_allclose(out.affine, rescaled_affine(phantom3d.affine, (2, 1, 3)))
    np.testing.assert_allclose(field_of_view_corners(out.affine, out.shape),
                               field_of_view_corners(phantom3d.affine, phantom3d.shape), atol=1e-9)
    assert out.meta["history"] == [{"op": "upscale", "method": "test", "factors": [2, 1, 3]}]


def test_coarser_grids_and_time_frames(phantom3d):
    v4 = phantom3d.with_data(np.zeros((*phantom3d.shape, 2), dtype=np.float32))
    out = resampled_volume(v4, np.zeros((24, 20, 12, 2), dtype=np.float32), [0.5, 0.5, 1.0],
                           [{"op": "degrade", "method": "a"}, {"op": "degrade", "method": "b"}])
    sx, sy, sz = phantom3d.spacing
    assert out.spacing == pytest.approx((2 * sx, 2 * sy, sz))
    assert [h["method"] for h in out.meta["history"]] == ["a", "b"] and "factors" not in out.meta["history"][0]


@pytest.mark.parametrize(("shape", "factors"), [
    ((96, 80, 12), [2, 1, 1]),       # the array was upscaled on an axis the factors leave alone
    ((96, 40), [2, 1, 1]),           # an axis lost
    ((48, 40, 12), [1, 1]),          # too few factors
    ((48, 40, 12, 3), [1, 1, 1]),    # frames appeared
    ((48, 40, 12), [1, 1, 0]),       # a zero factor
])
def test_factors_that_do_not_match_the_array_are_an_error(phantom3d, shape, factors):
    with pytest.raises(ValueError, match="factors"):
        resampled_volume(phantom3d, np.zeros(shape, dtype=np.float32), factors, {"op": "upscale"})
