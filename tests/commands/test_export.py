"""`mrisr export MODEL OUT.onnx`: a file ONNX Runtime runs like PyTorch, written atomically, never overwritten."""

import json

import numpy as np
import pytest
import torch

from mrisr.cli import main

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_export_shipped_model(tmp_path, capsys, rng):
    from mrisr.infer.onnx import OnnxSession
    from mrisr.models.modelfile import load_model_file

    out = tmp_path / "kspace-x2.onnx"
    assert main(["export", "kspace-x2", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    proto = onnx.load(str(out))
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["mrisr.meta"])["arch"] == "srresnet"
    assert json.loads(props["mrisr.factors"]) == [2, 2]
    model, _ = load_model_file("kspace-x2")
    x = rng.random((2, 1, 30, 34), dtype=np.float32)
    with torch.no_grad():
        ref = model.reconstruct(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(OnnxSession(out).run(x), ref, atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ["kspace-x2.onnx"]  # no temporaries left

    data = out.read_bytes()
    assert main(["export", "kspace-x2", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mrisr: error:") and "--force" in err[0]
    assert out.read_bytes() == data
    assert main(["export", "kspace-x2", str(out), "--force"]) == 0
    assert out.read_bytes() == data  # deterministic


@pytest.mark.parametrize(("model", "output", "message"), [
    ("kspace-x2", "net.pt", "must be an .onnx file"),
    ("no-such-model", "net.onnx", "no model file or shipped model 'no-such-model'"),
])
def test_export_bad_input(tmp_path, capsys, model, output, message):
    assert main(["export", model, str(tmp_path / output)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mrisr: error:") and message in err[0]
    assert not list(tmp_path.iterdir())
