"""selfsr end to end on phantoms (steps, not time): beats cubic at 4 mm, 3.3 mm and with a gap; deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrisr.degrade.grid import resampled_volume
from mrisr.degrade.resample import resample_axis
from mrisr.errors import ConfigError, InputError
from mrisr.io.volume import Volume
from mrisr.metrics.masks import foreground_mask
from mrisr.metrics.volume import score_arrays
from mrisr.selfsr.acquisition import acquisition_of
from mrisr.selfsr.fit import FitOptions
from mrisr.selfsr.pipeline import AcquisitionOptions, Budget, selfsr_volume
from mrisr.selfsr.simulate import profile_matrix
from tests.selfsr.conftest import thick

CPU = torch.device("cpu")
QUICK = FitOptions(steps=120, patch=24, batch=8, lr=2e-3, seed=0)


def cubic_onto(lr: Volume, n: int) -> np.ndarray:
    return resample_axis(torch.from_numpy(lr.data), 2, n, "cubic").numpy()


def psnr_ssim(truth: Volume, test: np.ndarray) -> tuple[float, float]:
    s = score_arrays(truth.data, test, foreground_mask(truth.data))
    return float(s["psnr"]), float(s["ssim"])


def check_beats_cubic(truth: Volume, lr: Volume, acq: AcquisitionOptions) -> Volume:
    out, _, _, result = selfsr_volume(lr, acq, QUICK, CPU)
    assert result.steps == QUICK.steps and result.stopped_by == "steps"
    assert out.shape == truth.shape
    np.testing.assert_allclose(out.affine, truth.affine, atol=1e-6)  # the 1 mm grid of the truth
    p_cub, s_cub = psnr_ssim(truth, cubic_onto(lr, truth.shape[2]))
    p_ssr, s_ssr = psnr_ssim(truth, out.data)
    assert p_ssr > p_cub + 0.3, (p_ssr, p_cub)
    assert s_ssr > s_cub, (s_ssr, s_cub)
    return out


def test_beats_cubic_at_4mm(truth_volume: Volume, thick_volume: Volume) -> None:
    out = check_beats_cubic(truth_volume, thick_volume, AcquisitionOptions())
    rec = out.meta["history"][-1]
    assert rec["steps"] == QUICK.steps and rec["acquisition"]["thickness"] == 4.0


def test_non_integer_factor_3p3mm(truth_volume: Volume) -> None:
    """12 Gaussian slices 3.33 mm apart and thick over the 40 mm field of view (a 3.33 -> 1 mm factor)."""
    w = profile_matrix(12, 40, 40 / 12).to(torch.float32)
    data = (torch.from_numpy(truth_volume.data) @ w.T).numpy()
    lr = resampled_volume(truth_volume, data, [1, 1, 12 / 40], {"op": "degrade"})
    assert abs(lr.spacing[2] - 3.333) < 1e-3
    check_beats_cubic(truth_volume, lr, AcquisitionOptions())


def test_gap(truth_volume: Volume) -> None:
    """3 mm slices every 4 mm (1 mm gap): the header says 4 mm, --gap 1 gives the 3 mm profile."""
    lr = thick(truth_volume, 4, thickness=3.0)
    assert acquisition_of(lr, gap=1.0).thickness == 3.0
    check_beats_cubic(truth_volume, lr, AcquisitionOptions(gap=1.0))


def test_deterministic_for_a_seed(thick_volume: Volume) -> None:
    opts = FitOptions(steps=15, patch=24, batch=4, seed=5)
    a, *_ = selfsr_volume(thick_volume, AcquisitionOptions(), opts, CPU)
    b, *_ = selfsr_volume(thick_volume, AcquisitionOptions(), opts, CPU)
    c, *_ = selfsr_volume(thick_volume, AcquisitionOptions(), FitOptions(steps=15, patch=24, batch=4, seed=6), CPU)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)


class CountdownBudget(Budget):
    """A budget whose clock is the number of times it was read: ``left()`` gives ``calls_left`` - calls so far."""

    def __init__(self, calls_left: int):
        super().__init__(float(calls_left), 0.0)
        self.calls = 0

    def left(self) -> float:
        self.calls += 1
        return self.seconds - self.calls


def test_budget_stops_training_and_records_steps(thick_volume: Volume, monkeypatch: pytest.MonkeyPatch) -> None:
    """No clock: the budget is read once before training and once per step, and the reserve kept for inference
    is set to 0, so a budget of 12 reads trains exactly 10 steps and says it stopped by the budget."""
    from mrisr.selfsr import pipeline

    monkeypatch.setattr(pipeline.InferenceReserve, "__call__", lambda self: 0.0)
    out, _, meta, result = selfsr_volume(thick_volume, AcquisitionOptions(), FitOptions(patch=24, batch=4), CPU,
                                         budget=CountdownBudget(12))
    assert (result.stopped_by, result.steps) == ("budget", 10)
    assert out.meta["history"][-1]["steps"] == 10 == meta["self_supervised"]["steps"]
    with pytest.raises(InputError, match="no time to train"):
        selfsr_volume(thick_volume, AcquisitionOptions(), FitOptions(patch=24, batch=4), CPU, budget=CountdownBudget(1))


def test_acquisition_from_header_and_options(thick_volume: Volume) -> None:
    acq = acquisition_of(thick_volume)
    assert (acq.axis, acq.spacing, acq.thickness, acq.profile) == (2, 4.0, 4.0, "gaussian")
    assert acquisition_of(thick_volume, thickness=3.0, profile="rect").thickness == 3.0
    with pytest.raises(ConfigError, match="must equal"):
        acquisition_of(thick_volume, thickness=3.0, gap=2.0)
    with pytest.raises(ConfigError, match="positive"):
        acquisition_of(thick_volume, gap=4.0)
    with pytest.raises(ConfigError, match="profile"):
        acquisition_of(thick_volume, profile="sinc")
    iso = Volume(np.zeros((8, 8, 8), np.float32), np.eye(4))
    with pytest.raises(InputError, match="single coarsest axis"):
        acquisition_of(iso)
    with pytest.raises(InputError, match="not coarser"):
        acquisition_of(iso, axis=2)


def test_dicom_slice_thickness_is_the_default(thick_volume: Volume) -> None:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SliceThickness = "3.5"
    vol = Volume(thick_volume.data, thick_volume.affine, meta={"dicom_headers": [ds] * thick_volume.shape[2]})
    assert acquisition_of(vol).thickness == 3.5


def test_init_from_a_shipped_model_copies_its_body() -> None:
    """--init kspace-x2 (a 2D x2 SRResNet): its scale-1 twin gets every tensor but the upsampler's."""
    from mrisr.models.modelfile import load_model_file
    from mrisr.selfsr.pipeline import initial_network

    net, note = initial_network("kspace-x2", 0)
    src, _ = load_model_file("kspace-x2")
    shipped = src.state_dict()
    mine = net.state_dict()
    assert set(mine) == {k for k in shipped if not k.startswith("upsample.")}
    for k in mine:
        torch.testing.assert_close(mine[k], shipped[k])
    assert f"{len(mine)} of {len(mine)} tensors" in note
    assert net.scale == 1 and not net.data_consistency


def test_residual_gain_shrinks_a_harmful_correction(thick_volume: Volume) -> None:
    """A network whose correction is pure noise gets gain ~0 (back to cubic); the fitted gain is the least-squares
    one on the validation patches (checked against a brute-force search)."""
    from mrisr.data.normalise import fit_intensity_map
    from mrisr.selfsr.fit import VALIDATION_PATCHES, fit_residual_gain
    from mrisr.selfsr.pairs import PatchSampler, make_pairs
    from mrisr.selfsr.pipeline import NORMALISATION, initial_network

    acq = acquisition_of(thick_volume)
    sets = make_pairs(fit_intensity_map(thick_volume.data, NORMALISATION).forward(thick_volume.data), acq, 24)
    net, _ = initial_network(None, 0)
    tail = net.tail
    assert isinstance(tail, torch.nn.Conv2d)
    torch.nn.init.normal_(tail.weight, std=0.05)
    x, t = PatchSampler(sets, 24, VALIDATION_PATCHES, 0 + 1).next()
    with torch.no_grad():
        r = (net(x) - x).double()
    e = (t - x).double()
    grid = torch.linspace(0, 1, 1001, dtype=torch.float64)
    best = float(grid[torch.argmin(torch.stack([((e - g * r) ** 2).mean() for g in grid]))])
    g, stats = fit_residual_gain(net, sets, 24, 0, CPU)
    assert g is not None and abs(g - best) < 2e-3 and g < 0.2
    assert stats["mse_scaled"] <= min(stats["mse_cubic"], stats["mse_network"]) + 1e-12
    with torch.no_grad():  # the gain is baked into the network
        torch.testing.assert_close((net(x) - x).double(), g * r, atol=1e-5, rtol=1e-4)
