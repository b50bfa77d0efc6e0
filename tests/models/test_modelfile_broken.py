"""Model files with wrong, inconsistent or broken metadata/weights: one-line InputError, never a crash."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import torch
from safetensors.torch import load_file, save_file

from mrisr.errors import ConfigError, InputError
from mrisr.models import build_model, load_model_file, save_model_file
from mrisr.models.modelfile import check_normalisation
from mrisr.models.registry import REGISTRY


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A valid tiny x2 model file: (metadata dict, state dict)."""
    folder = tmp_path_factory.mktemp("model")
    path = save_model_file(folder / "m", build_model("fast", scale=2, **REGISTRY["fast"].tiny))
    return json.loads((folder / "m.json").read_text()), load_file(str(path))


def _write(tmp_path, md, state) -> str:
    path = tmp_path / "x.safetensors"
    save_file(state, str(path), metadata={"mrisr": json.dumps(md)})
    return str(path)


_META_CHANGES: dict[str, tuple[Callable[[dict], None], str]] = {
    "args not a mapping": (lambda d: d.update(args=[1, 2]), "'args' must be a mapping"),
    "arch not a name": (lambda d: d.update(arch=7), "'arch' must be a registry name"),
    "format_version text": (lambda d: d.update(format_version="x"), "format_version must be an integer"),
    "normalisation text": (lambda d: d.update(normalisation="percentile"), "normalisation must be a mapping"),
    "normalisation range text": (lambda d: d.update(normalisation={"method": "minmax", "range": ["a", "b"]}),
                                 "not a number"),
    "argument of wrong type": (lambda d: d["args"].update(channels="8"), "channels must be an integer"),
    "scale disagrees with the network": (lambda d: d.update(scale=3, factors=[3, 3]), "metadata says scale 3"),
}


@pytest.mark.parametrize("case", sorted(_META_CHANGES))
def test_bad_metadata_is_one_line_input_error(tmp_path, saved, case):
    md, state = saved
    md = json.loads(json.dumps(md))
    change, message = _META_CHANGES[case]
    change(md)
    with pytest.raises(InputError, match=message) as err:
        load_model_file(_write(tmp_path, md, state))
    assert "\n" not in str(err.value)


def test_weights_that_do_not_fit_are_summarised_on_one_line(tmp_path, saved):
    md, state = saved
    md3 = json.loads(json.dumps(md))
    md3["args"]["scale"], md3["scale"], md3["factors"] = 3, 3, [3, 3]
    with pytest.raises(InputError, match="wrong shape") as err:
        load_model_file(_write(tmp_path, md3, state))
    assert "\n" not in str(err.value)
    other = {**md, "arch": "patch_discriminator", "kind": "discriminator", "args": {}}
    path = _write(tmp_path, other, state)
    with pytest.raises(InputError, match=r"\d+ missing .*and \d+ more\); \d+ unexpected") as err:
        load_model_file(path)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400


def test_nan_weights_are_refused(tmp_path, saved):
    md, state = saved
    broken = {k: (v * float("nan") if v.is_floating_point() else v) for k, v in state.items()}
    with pytest.raises(InputError, match="NaN or Inf"):
        load_model_file(_write(tmp_path, md, broken))


def test_truncated_file_is_refused(tmp_path, saved):
    md, state = saved
    data = (tmp_path / "ok.safetensors")
    save_file(state, str(data), metadata={"mrisr": json.dumps(md)})
    raw = data.read_bytes()
    for n in (0, 5, 20, len(raw) // 2, len(raw) - 1):
        (tmp_path / "cut.safetensors").write_bytes(raw[:n])
        with pytest.raises(InputError):
            load_model_file(tmp_path / "cut.safetensors")


def test_check_normalisation_rejects_non_mappings_as_config_errors():
    with pytest.raises(ConfigError):
        check_normalisation(["minmax"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        check_normalisation({"method": "fixed", "low": "a", "high": 1})


def test_registry_checks_argument_types():
    with pytest.raises(ConfigError, match="n_blocks must be an integer"):
        build_model("srresnet", n_blocks=2.5)
    with pytest.raises(ConfigError, match="batch_norm must be true or false"):
        build_model("srresnet", batch_norm="no")
    model = build_model("resnet3d", res_scale=1, **{k: v for k, v in REGISTRY["resnet3d"].tiny.items()})
    assert isinstance(model, torch.nn.Module)


def test_the_sidecar_json_names_its_model(tmp_path):
    path = save_model_file(tmp_path / "m", build_model("fast", scale=2, **REGISTRY["fast"].tiny))
    _, md = load_model_file(tmp_path / "m.json")
    assert md["path"] == str(path)


def test_wrapped_networks_save_and_load_as_the_plain_network(tmp_path, saved):
    model = build_model("fast", scale=2, **REGISTRY["fast"].tiny).eval()
    x = torch.rand(1, 1, 8, 8)
    for name, wrapped in (("compiled", torch.compile(model)), ("dp", torch.nn.DataParallel(model))):
        path = save_model_file(tmp_path / name, wrapped)
        loaded, _ = load_model_file(path)
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))
    # a file whose keys carry a wrapper prefix (written by other tools) loads too
    md, state = saved
    prefixed = {f"module._orig_mod.{k}": v for k, v in state.items()}
    loaded, _ = load_model_file(_write(tmp_path, md, prefixed))
    assert set(loaded.state_dict()) == set(state)
