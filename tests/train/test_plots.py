"""Loss-curve markers: one mean per epoch, at the epoch's end (or its last point while incomplete)."""

from __future__ import annotations

import numpy as np
import pytest

from mrisr.train.plots import epoch_means


def test_values_logged_at_an_epoch_end_belong_to_that_epoch() -> None:
    xs = np.array([0.5, 1.0, 1.5, 2.0, 2.25])  # logged every half epoch; 2.25 is in an unfinished epoch
    ys = np.array([4.0, 2.0, 1.0, 3.0, 7.0])
    assert epoch_means(xs, ys) == [(1.0, pytest.approx(3.0)), (2.0, pytest.approx(2.0)), (2.25, pytest.approx(7.0))]
