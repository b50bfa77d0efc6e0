"""The slice-profile simulation on a fine axis: integer ratios match mrisr.degrade, any ratio and gaps work."""

from __future__ import annotations

import math

import pytest
import torch

from mrisr.degrade.resample import resample_axis
from mrisr.degrade.slice_profile import slice_weights
from mrisr.selfsr.simulate import axis_simulation, profile_matrix, simulate_axis


@pytest.mark.parametrize("profile", ["gaussian", "rect"])
@pytest.mark.parametrize(("scale", "thickness"), [(4, 4.0), (3, 2.0), (5, 4.0)])
def test_integer_ratio_matches_slice_weights(profile: str, scale: int, thickness: float) -> None:
    got = profile_matrix(36 // scale * 1, (36 // scale) * scale, thickness, profile)
    want = slice_weights((36 // scale) * scale, scale, thickness, profile)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_non_integer_ratio_geometry() -> None:
    sim = axis_simulation(50, 3.3, 3.3)
    assert sim.n_lr == math.floor(50 / 3.3)  # 15 slices
    assert sim.length == round(15 * 3.3)  # 50 (49.5 rounds to 50)
    assert abs(sim.ratio - 3.3) < 0.05
    # coarse slice centres at (m + 0.5) * L / n_lr - 0.5: the centre of mass of each row of weights
    w = profile_matrix(sim.n_lr, sim.length, 3.3)
    centres = (w * torch.arange(sim.length, dtype=torch.float64)).sum(1)
    want = (torch.arange(sim.n_lr, dtype=torch.float64) + 0.5) * sim.length / sim.n_lr - 0.5
    torch.testing.assert_close(centres[2:-2], want[2:-2], atol=1e-6, rtol=0)  # inner rows: no weight cut off


def test_operator_is_profile_then_cubic() -> None:
    x = torch.rand(3, 40, dtype=torch.float64)
    sim = axis_simulation(40, 2.5, 2.0, "rect")
    degraded, truth = simulate_axis(x, 1, sim)
    crop = x[:, sim.start:sim.start + sim.length]
    torch.testing.assert_close(truth, crop)
    lr = crop @ profile_matrix(sim.n_lr, sim.length, 2.0, "rect").T
    torch.testing.assert_close(degraded, resample_axis(lr, 1, sim.length, "cubic"))


def test_constant_stays_constant() -> None:
    sim = axis_simulation(33, 3.3, 2.3)
    degraded, _ = simulate_axis(torch.full((2, 33), 7.0, dtype=torch.float64), 1, sim)
    torch.testing.assert_close(degraded, torch.full_like(degraded, 7.0))


def test_rect_gap_ignores_the_gap() -> None:
    """3 mm rect slices 5 mm apart (2 mm gaps): slice m is centred at 5m + 2 and covers fine voxels 5m+1..5m+3."""
    w = profile_matrix(4, 20, 3.0, "rect")
    assert torch.all(w.sum(0)[[0, 4, 5, 9, 10, 14, 15, 19]] == 0)  # fine voxels in the gaps
    torch.testing.assert_close(w[1, 6:9], torch.full((3,), 1 / 3, dtype=torch.float64))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="exceed"):
        axis_simulation(40, 1.0, 1.0)
    with pytest.raises(ValueError, match="fewer than 2"):
        axis_simulation(5, 3.0, 3.0)
    with pytest.raises(ValueError, match="positive"):
        profile_matrix(4, 16, 0.0)
    with pytest.raises(ValueError, match="profile"):
        profile_matrix(4, 16, 4.0, "sinc")
