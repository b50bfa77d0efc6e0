"""Model files: metadata round trip, name/folder resolution, refusal of pickles (never executed)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from mrisr.errors import ConfigError, InputError, OutputExistsError
from mrisr.models import build_model, load_model_file, read_model_metadata, save_model_file
from mrisr.models import modelfile as mf
from mrisr.models.registry import REGISTRY


def _tiny(name="fast", **kw):
    return build_model(name, **{**REGISTRY[name].tiny, **kw})


class _Evil:
    """Unpickling this creates ``marker`` (stands in for arbitrary code execution)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_metadata_round_trip(tmp_path):
    model = _tiny(scale=3, residual="bicubic")
    meta = {
        "normalisation": {"method": "percentile", "low_percentile": 1.0, "high_percentile": 99.0},
        "degradation": "kspace:scale=3,window=hamming",
        "training_data": {"dataset": "MNI152 2009", "volumes": 1},
        "validation_metrics": {"psnr": 33.1, "ssim": 0.91},
        "description": "test model",
    }
    path = save_model_file(tmp_path / "m", model, meta=meta)
    assert path.name == "m.safetensors" and (tmp_path / "m.json").is_file()
    side = json.loads((tmp_path / "m.json").read_text())
    md = read_model_metadata(path)
    for key in ("arch", "args", "scale", "factors", "normalisation", "degradation", "training_data",
                "validation_metrics", "mrisr_version", "description"):
        assert md[key] == side[key]
    assert md["arch"] == "fast" and md["scale"] == 3 and md["args"]["residual"] == "bicubic"
    assert md["args"]["channels"] == REGISTRY["fast"].tiny["channels"]
    assert md["normalisation"]["range"] == [0.0, 1.0] and md["normalisation"]["clip"] is True
    assert md["validation_metrics"]["psnr"] == 33.1
    loaded, md2 = load_model_file(path)
    assert md2["degradation"] == meta["degradation"]
    assert isinstance(loaded, type(model))


def test_refuses_to_overwrite_without_force(tmp_path):
    model = _tiny()
    save_model_file(tmp_path / "m.safetensors", model)
    with pytest.raises(OutputExistsError):
        save_model_file(tmp_path / "m.safetensors", model)
    save_model_file(tmp_path / "m.safetensors", model, force=True)


def test_bad_metadata_is_refused_at_save(tmp_path):
    model = _tiny()
    with pytest.raises(ConfigError, match="normalisation"):
        save_model_file(tmp_path / "a", model, meta={"normalisation": {"method": "zscore"}})
    with pytest.raises(ConfigError, match="set by mrisr"):
        save_model_file(tmp_path / "b", model, meta={"arch": "srresnet"})
    with pytest.raises(ConfigError, match="JSON"):
        save_model_file(tmp_path / "c", model, meta={"training_data": object()})
    assert not list(tmp_path.iterdir())


def test_sidecar_only_metadata_is_accepted(tmp_path):
    model = _tiny()
    path = save_model_file(tmp_path / "m", model)
    # rewrite the weights without header metadata: the sidecar then carries it
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    _, md = load_model_file(path)
    assert md["arch"] == "fast"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arch": "nosuchnet"}, "cannot rebuild"),
        ({"args": {"scale": 2, "channels": 999}}, "do not fit"),
        ({"format_version": 99}, "newer mrisr"),
        ({"format": "other"}, "not an mrisr model file"),
    ],
)
def test_inconsistent_files_are_input_errors(tmp_path, change, message):
    model = _tiny()
    md = mf.build_metadata(model, "fast", model.mrisr_args, None)
    md.update(change)
    if "args" in change:
        md["args"] = {**model.mrisr_args, **change["args"]}
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    path = tmp_path / "x.safetensors"
    save_file(state, str(path), metadata={"mrisr": json.dumps(md)})
    with pytest.raises(InputError, match=message):
        load_model_file(path)


def test_resolves_folders_and_shipped_names(tmp_path, monkeypatch):
    model = _tiny()
    folder = tmp_path / "run"
    save_model_file(folder / "model.safetensors", model)
    assert load_model_file(folder)[1]["arch"] == "fast"
    shipped = tmp_path / "pretrained"
    save_model_file(shipped / "fast-kspace-x2.safetensors", model, meta={"degradation": "kspace:scale=2"})
    monkeypatch.setattr(mf, "pretrained_dir", lambda: shipped)
    assert mf.list_pretrained() == ["fast-kspace-x2"]
    _, md = load_model_file("fast-kspace-x2")
    assert md["degradation"] == "kspace:scale=2"
    with pytest.raises(InputError, match="is an architecture"):
        load_model_file("srresnet")
    with pytest.raises(InputError, match="fast-kspace-x2"):
        load_model_file("nosuch")


def test_the_package_folder_is_where_shipped_models_live():
    d = mf.pretrained_dir()
    assert d.name == "pretrained" and d.parent.name == "mrisr" and (d / "__init__.py").is_file()


# ----------------------------------------------------------------------------------- pickles
def _write_evil(tmp_path):
    marker = tmp_path / "PWNED"
    payload = pickle.dumps({"weight": _Evil(marker)}, protocol=2)
    return marker, payload


def test_crafted_pickle_is_live(tmp_path):
    """The payload really executes when unpickled (so the tests below are meaningful)."""
    marker, payload = _write_evil(tmp_path)
    pickle.loads(payload)
    assert marker.exists()


@pytest.mark.parametrize("filename", ["evil.pt", "evil.pth", "evil.ckpt", "evil.safetensors", "evil"])
def test_malicious_pickle_is_refused_not_executed(tmp_path, filename, monkeypatch):
    marker, payload = _write_evil(tmp_path)
    path = tmp_path / filename
    path.write_bytes(payload)

    def forbidden(*a, **k):
        raise AssertionError("an unpickler was called")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    with pytest.raises(InputError) as info:
        load_model_file(path)
    assert not marker.exists()
    if filename != "evil.safetensors":
        assert "pickle" in str(info.value) and "never unpickles" in str(info.value)
    with pytest.raises(InputError):
        read_model_metadata(path)
    assert not marker.exists()


def test_malicious_torch_checkpoint_is_refused(tmp_path):
    """A zip-format ``torch.save`` checkpoint carrying the payload is refused too (also via the CLI)."""
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": _Evil(marker)}, path)
    assert not marker.exists()
    with pytest.raises(InputError, match="pickle"):
        load_model_file(path)
    assert not marker.exists()
    proc = subprocess.run([sys.executable, "-m", "mrisr", "models", "show", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("mrisr: error:") and "pickle" in proc.stderr
    assert not marker.exists()


def test_loading_valid_files_never_unpickles(tmp_path, monkeypatch):
    path = save_model_file(tmp_path / "m", _tiny(scale=2))

    def forbidden(*a, **k):
        raise AssertionError("an unpickler was called")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    load_model_file(path)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_model_file_gets_the_umask_mode_not_safetensors_0600(tmp_path, umask):
    old = os.umask(umask)
    try:
        out = save_model_file(tmp_path / "m.safetensors", _tiny())
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert mf.sidecar_path(out).stat().st_mode & 0o777 == 0o666 & ~umask
