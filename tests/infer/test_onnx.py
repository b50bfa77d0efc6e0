"""ONNX export and the ONNX Runtime engine (mrisr.infer.onnx): same outputs as PyTorch to 1e-4."""

import sys

import numpy as np
import pytest
import torch

from mrisr.errors import ConfigError
from mrisr.infer.engine import NetworkRunner, run_slices
from mrisr.infer.tiling import run_patches
from mrisr.models.registry import build_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from mrisr.infer.onnx import OnnxSession, export_onnx_bytes  # noqa: E402

CPU = torch.device("cpu")


def _random_srresnet(**kw):
    torch.manual_seed(3)
    args = {"scale": 2, "channels": 8, "n_blocks": 2, "batch_norm": False, "residual": "zerofill",
            "data_consistency": True, **kw}
    return build_model("srresnet", **args).eval()


def test_export_is_deterministic_and_has_dynamic_axes(rng):
    model = _random_srresnet(scale=3, in_channels=3)
    data = export_onnx_bytes(model)
    assert export_onnx_bytes(model) == data
    proto = onnx.load_from_string(data)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["mrisr.exported_part"] == "reconstruct"
    assert props["mrisr.residual"] == '"zerofill"' and props["mrisr.data_consistency"] == "true"
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["n", 3, "s0", "s1"]
    # batch and size unlike the traced example (2 x 40 x 48)
    x = rng.random((5, 3, 23, 61), dtype=np.float32)
    y = OnnxSession(data, threads=1).run(x)
    with torch.no_grad():
        ref = model.reconstruct(torch.from_numpy(x)).numpy()
    assert y.shape == ref.shape == (5, 1, 69, 183)
    np.testing.assert_allclose(y, ref, atol=1e-4)


def test_onnx_engine_equals_torch_on_the_shipped_default_model(rng):
    from mrisr.models.modelfile import load_model_file
    from mrisr.pretrained import default_model

    model, _ = load_model_file(default_model(2))
    stack = rng.random((3, 40, 52), dtype=np.float32)
    a = run_slices(model, stack, 2, CPU, engine="torch")
    b = run_slices(model, stack, 2, CPU, engine="onnx")
    np.testing.assert_allclose(b, a, atol=1e-4)
    assert np.abs(a).max() > 0.1  # a real output, not zeros on both sides


def test_onnx_engine_3d_patches(rng):
    torch.manual_seed(0)
    model = build_model("resnet3d", scale=2, channels=4, n_blocks=1).eval()
    vol = rng.random((14, 12, 10), dtype=np.float32)
    a = run_patches(model, vol, 8, 4, 2, CPU, engine="torch")
    b = run_patches(model, vol, 8, 4, 2, CPU, engine="onnx")
    np.testing.assert_allclose(b, a, atol=1e-4)


def test_onnx_session_follows_weight_changes(rng):
    model = _random_srresnet()
    x = torch.from_numpy(rng.random((1, 1, 16, 16), dtype=np.float32))
    first = NetworkRunner(model, CPU, engine="onnx").net(x)
    with torch.no_grad():
        model.tail.weight.mul_(2.0)
        want = model.reconstruct(x)
    again = NetworkRunner(model, CPU, engine="onnx").net(x)
    np.testing.assert_allclose(again.numpy(), want.numpy(), atol=1e-4)
    assert not torch.allclose(first, again, atol=1e-3)


def test_upscale_with_model_onnx_equals_torch(phantom3d):
    from mrisr.infer import upscale_with_model

    small = phantom3d.with_data(phantom3d.data[:, :, :3])
    a = upscale_with_model(small, "kspace-x2", engine="torch")
    b = upscale_with_model(small, "kspace-x2", engine="onnx")
    np.testing.assert_allclose(b.data, a.data, atol=1e-4 * float(np.ptp(small.data)))
    np.testing.assert_array_equal(b.affine, a.affine)


def test_missing_onnxruntime_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with pytest.raises(ConfigError, match=r"install mrisr\[onnx\]"):
        OnnxSession(b"")
    with pytest.raises(ConfigError, match=r"install mrisr\[onnx\]"):
        NetworkRunner(_random_srresnet(), CPU, engine="onnx")
