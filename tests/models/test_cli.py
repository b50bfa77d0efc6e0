import json

from mrisr.cli import main
from mrisr.models import build_model, save_model_file
from mrisr.models.registry import REGISTRY, list_models


def test_models_list(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert name in out
    assert main(["models", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {a["name"] for a in data["architectures"]} == set(list_models())
    # shipped files predate the geometry field: read with the guess from their (2D, in-plane) factors
    assert all(m["geometry"] == "isotropic" for m in data["shipped_models"])


def test_models_show_file_and_architecture(tmp_path, capsys):
    model = build_model("fast", scale=3, **REGISTRY["fast"].tiny)
    path = save_model_file(tmp_path / "m", model, meta={"degradation": "bicubic:scale=3"})
    assert main(["models", "show", str(path), "--json"]) == 0
    md = json.loads(capsys.readouterr().out)
    assert md["arch"] == "fast" and md["scale"] == 3 and md["degradation"] == "bicubic:scale=3"
    assert md["geometry"] == "isotropic"
    assert main(["models", "show", str(path)]) == 0
    assert "bicubic:scale=3" in capsys.readouterr().out
    assert main(["models", "show", "mdcsrn"]) == 0
    out = capsys.readouterr().out
    assert "growth" in out and "num_parameters_default" in out


def test_models_show_unknown_is_one_line_error(capsys):
    assert main(["models", "show", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mrisr: error:") and err.count("\n") == 1
