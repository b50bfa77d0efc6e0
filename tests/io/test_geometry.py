import numpy as np
import pytest

from mrisr.io.geometry import field_of_view_centre, field_of_view_corners, rescaled_affine, rescaled_shape
from tests.conftest import oblique_affine


@pytest.mark.parametrize("factor", [2, 3, (2, 2, 1), (1, 3, 4)])
def test_upsampling_keeps_field_of_view(factor):
    aff = oblique_affine()
    shape = (17, 23, 9)
    new_aff = rescaled_affine(aff, factor)
    new_shape = rescaled_shape(shape, factor)
    np.testing.assert_allclose(field_of_view_corners(new_aff, new_shape), field_of_view_corners(aff, shape), atol=1e-4)
    np.testing.assert_allclose(field_of_view_centre(new_aff, new_shape), field_of_view_centre(aff, shape), atol=1e-4)


def test_rescaled_affine_independent_arithmetic():
    # 1D check along an axis-aligned grid: 4 voxels of 2 mm starting at centre 10 mm cover [9, 17] mm;
    # x2 gives 8 voxels of 1 mm whose first centre is 9.5 mm.
    aff = np.diag([2.0, 1.0, 1.0, 1.0])
    aff[0, 3] = 10.0
    new = rescaled_affine(aff, (2, 1, 1))
    assert new[0, 0] == pytest.approx(1.0)
    assert new[0, 3] == pytest.approx(9.5)
    # and downsampling back is the inverse
    np.testing.assert_allclose(rescaled_affine(new, (0.5, 1, 1)), aff, atol=1e-12)


def test_rescaled_affine_rejects_bad_factors():
    with pytest.raises(ValueError):
        rescaled_affine(np.eye(4), (2, 0, 1))
    with pytest.raises(ValueError):
        rescaled_affine(np.eye(4), (2, 2))
