"""The per-batch engine (mrisr.infer.engine): same results as the model's own forward, engines, threads, batches."""

import copy

import numpy as np
import pytest
import torch

from mrisr.errors import ConfigError
from mrisr.infer import engine as eng
from mrisr.infer.engine import NetworkRunner, choose_batch, choose_threads, resolve_engine, run_slices
from mrisr.models.registry import build_model

CPU = torch.device("cpu")


@pytest.fixture
def threads_restored():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _small(**kw):
    torch.manual_seed(0)
    args = {"scale": 2, "channels": 8, "n_blocks": 1, "batch_norm": False, "residual": "zerofill",
            "data_consistency": True, **kw}
    return build_model("srresnet", **args).eval()


def _reference(model, stack):
    """An independent per-slice loop: each slice with its neighbours (ends repeated), the model's forward."""
    c = model.in_channels // 2
    n = stack.shape[0]
    out = []
    with torch.no_grad():
        for i in range(n):
            idx = [min(max(j, 0), n - 1) for j in range(i - c, i + c + 1)]
            out.append(model(torch.from_numpy(stack[idx])[None])[0, 0].numpy())
    return np.stack(out)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_run_slices_equals_the_models_forward(rng, in_channels):
    model = _small(in_channels=in_channels)
    stack = rng.random((5, 24, 30), dtype=np.float32)
    before = stack.copy()
    got = run_slices(model, stack, 2, CPU, engine="torch")
    np.testing.assert_array_equal(stack, before)
    assert got.shape == (5, 48, 60) and got.dtype == np.float32
    np.testing.assert_allclose(got, _reference(model, stack), atol=1e-5)


def test_runner_forward_keeps_the_calibrated_gain(rng):
    model = _small()
    scaled = copy.copy(model)
    scaled.residual_gain = 0.4
    x = torch.from_numpy(rng.random((2, 1, 20, 16), dtype=np.float32))
    with torch.no_grad():
        want = scaled(x)
    np.testing.assert_allclose(NetworkRunner(scaled, CPU, engine="torch").forward(x).numpy(), want.numpy(), atol=1e-5)
    assert not torch.allclose(want, model(x).detach(), atol=1e-3)  # the gain matters


def test_shipped_default_model_through_run_slices(rng):
    from mrisr.models.modelfile import load_model_file
    from mrisr.pretrained import default_model

    model, _ = load_model_file(default_model(2))
    stack = rng.random((3, 32, 40), dtype=np.float32)
    np.testing.assert_allclose(run_slices(model, stack, 8, CPU, engine="torch"), _reference(model, stack), atol=1e-5)


def test_a_bare_module_runs_whole(rng):
    class Up(torch.nn.Module):
        factors = (2, 2)
        in_channels = 1

        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest") * 2.0

    stack = rng.random((3, 5, 6), dtype=np.float32)
    got = run_slices(Up(), stack, 2, CPU, engine="torch")
    np.testing.assert_allclose(got, 2.0 * stack.repeat(2, 1).repeat(2, 2))


def test_output_written_into_out(rng):
    model = _small()
    stack = rng.random((3, 8, 8), dtype=np.float32)
    out = np.full((3, 16, 16), np.nan, dtype=np.float32)
    assert run_slices(model, stack, 2, CPU, engine="torch", out=out) is out
    assert np.all(np.isfinite(out))
    with pytest.raises(ValueError, match="C-contiguous float32"):
        run_slices(model, stack, 2, CPU, out=np.zeros((3, 16, 16), dtype=np.float64))


def test_choose_batch_from_the_slice_size():
    assert choose_batch(256 * 256, 8, CPU) == 1
    assert choose_batch(64 * 64, 8, CPU) == 8
    assert choose_batch(128 * 128, 8, CPU) == 4
    assert choose_batch(1024 * 1024, 8, CPU) == 1
    assert choose_batch(1024 * 1024, 8, torch.device("cuda")) == 8


def test_choose_threads(monkeypatch, threads_restored):
    assert choose_threads(1) == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert choose_threads() == 2 and torch.get_num_threads() == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    import os

    assert choose_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(ConfigError, match="OMP_NUM_THREADS"):
        choose_threads()
    with pytest.raises(ConfigError, match=">= 1"):
        choose_threads(0)


def test_resolve_engine(monkeypatch):
    with pytest.raises(ConfigError, match="unknown engine 'tensorrt'"):
        resolve_engine("tensorrt", CPU)
    assert resolve_engine("torch", CPU) == "torch"
    monkeypatch.setattr(eng, "onnxruntime_available", lambda: False)
    assert resolve_engine("auto", CPU) == "torch"
    with pytest.raises(ConfigError, match=r"install mrisr\[onnx\]"):
        resolve_engine("onnx", CPU)
    monkeypatch.setattr(eng, "onnxruntime_available", lambda: True)
    monkeypatch.setattr(eng, "AUTO_CPU_ENGINE", "onnx")
    assert resolve_engine("auto", CPU) == "onnx"
    assert resolve_engine("auto", torch.device("cuda")) == "torch"


def test_upscale_with_model_engine_option(phantom3d):
    from mrisr.infer import upscale_with_model

    with pytest.raises(ConfigError, match="unknown engine"):
        upscale_with_model(phantom3d, _small(), engine="tensorrt")
    small = phantom3d.with_data(phantom3d.data[:, :, :2])
    a = upscale_with_model(small, _small(), engine="torch")
    b = upscale_with_model(small, _small())  # auto: torch, or ONNX Runtime where that is the faster
    np.testing.assert_allclose(a.data, b.data, atol=1e-4 * float(np.ptp(small.data)))
