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


def test_upscale_engine_option(tmp_path, phantom3d, capsys):
    from mrisr.io import read_volume, write_volume

    src = write_volume(phantom3d.with_data(phantom3d.data[:, :, :2]), tmp_path / "in.nii.gz")
    outs = {}
    for engine in ("torch", "onnx"):
        out = tmp_path / f"{engine}.nii.gz"
        assert main(["upscale", str(src), str(out), "--model", "kspace-x2", "--engine", engine]) == 0
        outs[engine] = read_volume(out).data
    np.testing.assert_allclose(outs["onnx"], outs["torch"], atol=1e-4 * float(np.ptp(phantom3d.data)))
    capsys.readouterr()
    with pytest.raises(SystemExit):  # argparse: not a choice
        main(["upscale", str(src), str(tmp_path / "x.nii.gz"), "--model", "kspace-x2", "--engine", "tensorrt"])


def test_engine_with_a_baseline_method_is_refused(tmp_path, phantom3d, capsys):
    from mrisr.io import write_volume

    src = write_volume(phantom3d.with_data(phantom3d.data[:, :, :2]), tmp_path / "in.nii.gz")
    capsys.readouterr()
    code = main(["upscale", str(src), str(tmp_path / "x.nii.gz"), "--method", "bicubic", "--scale", "2",
                 "--engine", "onnx"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "--engine applies to --model" in err[0]
    assert not (tmp_path / "x.nii.gz").exists()
