"""Loss-curve markers (one mean per epoch, at the epoch's end or its last point while incomplete) and grid slices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrisr.train.plots import epoch_means, middle_slice


def test_values_logged_at_an_epoch_end_belong_to_that_epoch() -> None:
    xs = np.array([0.5, 1.0, 1.5, 2.0, 2.25])  # logged every half epoch; 2.25 is in an unfinished epoch
    ys = np.array([4.0, 2.0, 1.0, 3.0, 7.0])
    assert epoch_means(xs, ys) == [(1.0, pytest.approx(3.0)), (2.0, pytest.approx(2.0)), (2.25, pytest.approx(7.0))]


def test_middle_slice_of_a_3d_sample_is_in_plane() -> None:
    # 3D samples are in volume order (C, H, W, S): the grid shows the middle in-plane slice (H, W)
    x = torch.arange(3 * 4 * 5 * 6, dtype=torch.float32).reshape(3, 4, 5, 6)
    got = middle_slice(x)
    assert got.shape == (4, 5)
    np.testing.assert_array_equal(got, x[1, :, :, 3].numpy())
    flat = torch.rand(3, 7, 8)
    np.testing.assert_array_equal(middle_slice(flat), flat[1].numpy())
