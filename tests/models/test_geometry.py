"""A generator states its geometry (isotropic / through-plane); model files record it, old files get it guessed."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import save_file

from mrisr.errors import InputError
from mrisr.models import build_model, load_model_file, read_model_metadata, save_model_file
from mrisr.models import modelfile as mf
from mrisr.models.base import factors_for
from mrisr.models.registry import REGISTRY


def _tiny(name, **kw):
    return build_model(name, **{**REGISTRY[name].tiny, **kw})


@pytest.mark.parametrize(("name", "kw", "geometry", "factors"), [
    ("fast", {"scale": 3}, "isotropic", [3, 3]),
    ("resnet3d", {"scale": 2}, "isotropic", [2, 2, 2]),
    ("resnet3d", {"scale": 2, "anisotropic": True}, "through_plane", [1, 1, 2]),
    ("mdcsrn", {"scale": 3, "anisotropic": True}, "through_plane", [1, 1, 3]),
])
def test_model_file_round_trip_records_the_geometry(tmp_path, name, kw, geometry, factors):
    model = _tiny(name, **kw)
    assert model.geometry == geometry and list(model.factors) == factors
    path = save_model_file(tmp_path / "m", model)
    assert json.loads((tmp_path / "m.json").read_text())["geometry"] == geometry
    md = read_model_metadata(path)
    assert md["geometry"] == geometry and md["factors"] == factors
    loaded, md2 = load_model_file(path)
    assert loaded.geometry == md2["geometry"] == geometry


def _write(tmp_path, model, **change):
    md = mf.build_metadata(model, model.mrisr_arch, model.mrisr_args, None)
    for key, value in change.items():
        if value is None:
            md.pop(key)
        else:
            md[key] = value
    path = tmp_path / "x.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={"mrisr": json.dumps(md)})
    return path


@pytest.mark.parametrize(("kw", "geometry"), [({"anisotropic": True}, "through_plane"), ({}, "isotropic")])
def test_old_files_without_geometry_keep_working(tmp_path, kw, geometry):
    path = _write(tmp_path, _tiny("resnet3d", scale=2, **kw), geometry=None)
    assert read_model_metadata(path)["geometry"] == geometry
    model, md = load_model_file(path)
    assert md["geometry"] == model.geometry == geometry


def test_a_geometry_that_contradicts_the_network_is_refused(tmp_path):
    path = _write(tmp_path, _tiny("resnet3d", scale=2, anisotropic=True), geometry="isotropic")
    with pytest.raises(InputError, match="metadata says geometry 'isotropic' but the stored network has geometry "
                                         "'through_plane'"):
        load_model_file(path)


def test_factors_for_checks_the_geometry():
    assert factors_for(3, 4, "through_plane") == (1, 1, 4)
    assert factors_for(2, 4) == (4, 4)
    with pytest.raises(ValueError, match="geometry must be one of"):
        factors_for(3, 2, "in_plane")
    with pytest.raises(ValueError, match="needs spatial_dims=3"):
        factors_for(2, 2, "through_plane")
