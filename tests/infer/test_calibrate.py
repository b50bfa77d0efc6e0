"""Per-scan calibration of a residual network's correction (mrisr.infer.calibrate): the gain scales only the
correction, keeps data consistency, is the least-squares gain one degradation coarser, and turns a harmful
network into (almost) its baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrisr.degrade.chain import build_degradation
from mrisr.degrade.kspace import kspace_truncate, zerofill_upsample
from mrisr.infer import upscale_with_model
from mrisr.infer.calibrate import calibration_applies, residual_gain, with_residual_gain
from mrisr.io.volume import Volume
from mrisr.models import build_model, save_model_file
from mrisr.models.registry import REGISTRY


def psnr(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    return float(10 * np.log10(data_range ** 2 / np.mean((np.asarray(x, np.float64) - y) ** 2)))


META = {"degradation": "kspace:scale=2", "intended_use": {"image": "magnitude"}}


def _net(seed: int = 0, loud: float = 1.0, **kw) -> torch.nn.Module:
    """A randomly initialised residual zero-fill network with data consistency; ``loud`` scales its last
    layer, so its (wrong) guesses of the unmeasured frequencies are large."""
    torch.manual_seed(seed)
    args = {"scale": 2, "residual": "zerofill", "data_consistency": True, **REGISTRY["fast"].tiny, **kw}
    net = build_model("fast", **args).eval()
    with torch.no_grad():
        last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        last.weight.mul_(loud)
        last.bias.mul_(loud)
    return net


def _x(shape=(2, 1, 24, 20)) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(1).random(shape, dtype=np.float32))


def test_the_gain_scales_only_the_correction_and_keeps_the_measured_band():
    net, x = _net(loud=5.0), _x()
    with torch.inference_mode():
        full = net(x).double()
        half = with_residual_gain(net, 0.25)(x).double()
        none = with_residual_gain(net, 0.0)(x).double()
    base = zerofill_upsample(x.double(), (2, 2), (-2, -1))
    np.testing.assert_allclose(none.numpy(), base.numpy(), atol=1e-5)  # gain 0: the baseline exactly
    np.testing.assert_allclose(half.numpy(), (base + 0.25 * (full - base)).numpy(), atol=1e-5)
    band = kspace_truncate(half, (2, 2), (-2, -1), magnitude=False)
    np.testing.assert_allclose(band.numpy(), x.double().numpy(), atol=1e-5)  # data consistency holds


def test_the_shared_module_is_left_unchanged():
    net = _net()
    scaled = with_residual_gain(net, 0.5)
    assert scaled is not net and net.residual_gain == 1.0 and scaled.residual_gain == 0.5
    assert all(a is b for a, b in zip(scaled.parameters(), net.parameters(), strict=True))
    assert with_residual_gain(net, 1.0) is net


def test_the_gain_is_the_least_squares_gain_one_degradation_coarser():
    net = _net(loud=3.0)
    y = np.random.default_rng(2).random((1, 32, 28), dtype=np.float32)
    gain, rec = residual_gain(net, [y], META, slices=1)
    # independent arithmetic: degrade once more, correction d and target t, <d,t>/<d,d> clipped to [0, 1]
    yt = torch.from_numpy(y)[:, None]
    coarse, _ = build_degradation("kspace:scale=2").apply_tensor(yt, np.random.default_rng(0))
    with torch.inference_mode():
        base = zerofill_upsample(coarse.double(), (2, 2), (-2, -1))
        d = (net(coarse).double() - base).numpy().ravel()
    t = (yt.double() - base).numpy().ravel()
    want = float(np.clip(d @ t / (d @ d), 0.0, 1.0))
    assert gain == pytest.approx(want, abs=1e-6)
    err = np.sum((t - gain * d) ** 2) / np.sum(t ** 2)
    assert rec["coarse_error_vs_baseline"] == pytest.approx(err, abs=1e-4) and err <= 1.0
    assert rec["slices"] == 1


def test_a_harmful_network_is_turned_back_towards_its_baseline(phantom3d, tmp_path):
    """A loud random network makes the scan far worse than zero-fill; calibrated, it is within 0.1 dB of it."""
    hr = phantom3d
    lr = build_degradation("kspace:scale=2")(hr, seed=0)
    path = save_model_file(tmp_path / "loud.safetensors", _net(loud=20.0), meta=META)
    raw = upscale_with_model(lr, str(path), calibrate=False)
    cal = upscale_with_model(lr, str(path))
    zf = upscale_with_model(lr, str(path), calibrate=False)  # same call, to check determinism below
    np.testing.assert_array_equal(raw.data, zf.data)
    from mrisr.degrade.baselines import upscale_volume

    zerofill = upscale_volume(lr, [2, 2, 1], "zerofill")
    rng_ = float(hr.data.max() - hr.data.min())
    p_zf = psnr(zerofill.data, hr.data, data_range=rng_)
    p_raw, p_cal = psnr(raw.data, hr.data, data_range=rng_), psnr(cal.data, hr.data, data_range=rng_)
    assert p_raw < p_zf - 1.0  # the uncalibrated network does harm
    assert p_cal > p_zf - 0.1  # calibrated, it (almost) does not
    rec = cal.meta["history"][-1]["residual_gain"]
    assert 0.0 <= rec["gain"] < 0.2 and rec["coarse_error_vs_baseline"] <= 1.0
    assert "residual_gain" not in raw.meta["history"][-1]


def test_the_calibration_is_deterministic(phantom3d, tmp_path):
    path = save_model_file(tmp_path / "m.safetensors", _net(loud=2.0), meta=META)
    a = upscale_with_model(phantom3d, str(path))
    b = upscale_with_model(phantom3d, str(path))
    np.testing.assert_array_equal(a.data, b.data)
    assert a.meta["history"][-1]["residual_gain"] == b.meta["history"][-1]["residual_gain"]


@pytest.mark.parametrize(("net", "meta", "why"), [
    (lambda: _net(in_channels=3), META, "context"),
    (lambda: _net(), {}, "degradation"),
    (lambda: _net(residual=None), META, "residual"),
])
def test_models_it_cannot_calibrate_keep_their_full_correction(net, meta, why):
    module = net()
    assert why in calibration_applies(module, meta)
    gain, rec = residual_gain(module, [np.ones((3, 32, 32), np.float32)], meta)
    assert gain == 1.0 and why in rec["skipped"]


def test_slices_too_small_for_one_more_degradation_are_not_calibrated():
    gain, rec = residual_gain(_net(), [np.random.default_rng(0).random((2, 12, 12), dtype=np.float32)], META)
    assert gain == 1.0 and "small" in rec["skipped"]
    gain, rec = residual_gain(_net(), [np.zeros((2, 32, 32), np.float32)], META)  # blank slices only
    assert gain == 1.0 and "skipped" in rec


def test_a_2d_scan_is_calibrated(phantom2d):
    vol = Volume(phantom2d.data[:64, :64], phantom2d.affine, dict(phantom2d.meta))
    out = upscale_with_model(vol, (_net(loud=20.0), META))
    assert out.shape == (128, 128) and out.meta["history"][-1]["residual_gain"]["gain"] < 0.2


def _octave_by_hand(net: torch.nn.Module, y: np.ndarray, f: int) -> float:
    """Degrade by 2, run the x f network, truncate by f/2 back onto y's grid, least-squares gain vs y."""
    yt = torch.from_numpy(y)[:, None].double()
    coarse = kspace_truncate(yt, (2, 2), (-2, -1))
    with torch.inference_mode():
        back = kspace_truncate(net(coarse.float()).double(), (f // 2, f // 2), (-2, -1), magnitude=False)
    base = zerofill_upsample(coarse, (2, 2), (-2, -1))
    d, t = (back - base).numpy().ravel(), (yt - base).numpy().ravel()
    return float(np.clip(d @ t / (d @ d), 0.0, 1.0))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_at_x4_the_gain_is_also_checked_on_the_octave_above_the_band(seed, monkeypatch):
    from mrisr.infer import calibrate
    from mrisr.infer.calibrate import octave_gain

    net = _net(seed=seed, loud=3.0, scale=4)
    y = np.random.default_rng(seed).random((1, 40, 36), dtype=np.float32)
    meta = {**META, "degradation": "kspace:scale=4"}
    want = _octave_by_hand(net, y, 4)
    got = octave_gain(net, y, build_degradation("kspace:scale=4"), torch.device("cpu"))
    assert got == pytest.approx(want, abs=1e-6)
    gain, rec = residual_gain(net, [y], meta, slices=1)
    assert rec["octave_gain"] == pytest.approx(want, abs=1e-4)
    monkeypatch.setattr(calibrate, "octave_gain", lambda *args: None)
    coarse_only, rec_coarse = residual_gain(net, [y], meta, slices=1)
    assert "octave_gain" not in rec_coarse
    assert gain == pytest.approx(min(want, coarse_only), abs=1e-6)


@pytest.mark.parametrize("octave", [0.0, 0.3, 1.0])
def test_the_calibrated_gain_is_the_more_cautious_of_the_two_estimates(octave, monkeypatch):
    from mrisr.infer import calibrate

    net = _net(loud=3.0, scale=4)
    x = torch.from_numpy(np.random.default_rng(5).random((1, 1, 64, 60), dtype=np.float32))
    with torch.inference_mode():  # a scan the network itself made: the correction is right one scale coarser
        y = net(x)[:, 0].numpy()
    meta = {**META, "degradation": "kspace:scale=4"}
    monkeypatch.setattr(calibrate, "octave_gain", lambda *args: None)
    coarse, _ = residual_gain(net, [y], meta, slices=1)
    assert coarse == pytest.approx(1.0, abs=1e-3)  # the scan is what the network makes of its coarse copy
    monkeypatch.setattr(calibrate, "octave_gain", lambda *args: octave)
    gain, rec = residual_gain(net, [y], meta, slices=1)
    assert gain == pytest.approx(min(coarse, octave)) and rec["octave_gain"] == octave
    assert rec["gain"] == pytest.approx(gain, abs=1e-4)


def test_the_octave_check_is_only_for_even_kspace_factors_of_4_and_more():
    from mrisr.infer.calibrate import octave_gain

    y = np.random.default_rng(0).random((1, 48, 48), dtype=np.float32)
    cpu = torch.device("cpu")
    def octave(scale: int, spec: str, x: np.ndarray = y) -> float | None:
        return octave_gain(_net(scale=scale), x, build_degradation(spec), cpu)

    assert octave(4, "kspace:scale=4") is not None
    assert octave(2, "kspace:scale=2") is None
    assert octave(3, "kspace:scale=3") is None
    assert octave(4, "bicubic:scale=4") is None
    assert octave(4, "kspace:scale=4,window=hamming") is None
    assert octave(4, "kspace:scale=4", y[:, :14, :14]) is None  # 7 px after /2
    assert "octave_gain" not in residual_gain(_net(scale=2), [y], META, slices=1)[1]
