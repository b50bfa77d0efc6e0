"""The step registry and a step's own fields: every entry resolves, and a new step needs only its class and a
registry line (here a throwaway one, registered for one test) to parse, apply, record and reach the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from mrisr.cli import main
from mrisr.degrade.chain import build_degradation
from mrisr.degrade.registry import STEPS, step_class
from mrisr.degrade.step import ResamplingStep, Step, Uniform, number, reads
from mrisr.errors import ConfigError
from mrisr.io import read_volume, write_volume
from mrisr.io.geometry import field_of_view_corners


@dataclass(frozen=True)
class StrideStep(ResamplingStep):
    """Keep the first voxel of every ``scale`` along ``axes`` and multiply by ``gain`` (a number or a range)."""

    method: ClassVar[str] = "stride"
    gain: float | Uniform = field(default=1.0, metadata=reads(number(above=0.0)))

    def check(self) -> None:
        if self.scale > 8:
            raise ConfigError(f"stride: scale {self.scale} is more than 8")

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator,
              signal: float | None = None) -> torch.Tensor:
        for a in params["axes"]:
            t = t.index_select(a + 2, torch.arange(0, t.shape[a + 2], params["scale"]))
        return t * params["gain"]


@pytest.fixture
def stride_registered(monkeypatch):
    monkeypatch.setitem(STEPS, "stride", f"{StrideStep.__module__}:StrideStep")


@pytest.mark.parametrize("name", sorted(STEPS))
def test_every_entry_is_a_step_of_its_name(name):
    cls = step_class(name)
    assert issubclass(cls, Step) and cls.method == name
    assert step_class(f" {name.upper()} ") is cls


def test_unknown_name_lists_the_registry():
    with pytest.raises(ConfigError, match="unknown degradation 'blur'; choose from kspace, bicubic, block, slice, noise"):
        step_class("blur")


def test_a_registry_line_naming_no_step_is_refused(monkeypatch):
    monkeypatch.setitem(STEPS, "volume", "mrisr.io.volume:Volume")
    with pytest.raises(TypeError, match="is not a Step"):
        step_class("volume")


@dataclass(frozen=True)
class UnreadStep(StrideStep):
    """A field declared without a parser."""

    method: ClassVar[str] = "unread"
    offset: int = 0


def test_a_field_without_a_parser_is_refused_at_lookup(monkeypatch):
    monkeypatch.setitem(STEPS, "unread", f"{UnreadStep.__module__}:UnreadStep")
    with pytest.raises(TypeError, match=r"fields \['offset'\] declare no parser"):
        step_class("unread")


def test_registered_step_parses_applies_and_records(phantom3d, stride_registered):
    deg = build_degradation("stride:scale=2,gain=0.5..2;noise:snr=30")
    assert deg.steps[0] == StrideStep(scale=2, gain=Uniform(0.5, 2.0))
    assert deg.factors(3) == (2, 2, 1)
    assert build_degradation(deg.spec) == deg
    assert build_degradation([{"stride": {"gain": {"uniform": [0.5, 2]}}}, "noise:snr=30"], scale=2) == deg
    out = deg(phantom3d, seed=3)
    assert out.shape == (24, 20, 12)
    np.testing.assert_allclose(field_of_view_corners(out.affine, out.shape),
                               field_of_view_corners(phantom3d.affine, phantom3d.shape), atol=1e-6)
    entry = out.meta["history"][0]
    assert entry["op"] == "degrade" and entry["method"] == "stride" and entry["seed"] == 3
    assert entry["axes"] == [0, 1] and 0.5 <= entry["gain"] <= 2.0
    clean, _ = build_degradation(f"stride:scale=2,gain={entry['gain']!r}").apply_array(
        phantom3d.data, np.random.default_rng(0))
    np.testing.assert_allclose(clean, phantom3d.data[::2, ::2] * entry["gain"], rtol=1e-6)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("stride", "stride needs a scale (e.g. stride:scale=2)"),
        ("stride:scale=2,gain=0", "stride.gain must be > 0, got 0.0"),
        ("stride:scale=2,offset=1", "stride: unknown parameter 'offset'; known: axes, gain, scale"),
        ("stride:scale=16", "stride: scale 16 is more than 8"),
    ],
)
def test_registered_step_checks_its_own_fields(stride_registered, spec, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_degradation(spec)


def test_labels_name_fields_the_way_the_user_wrote_them():
    with pytest.raises(ConfigError, match="--gain must be > 0"):
        StrideStep.from_mapping({"scale": 2, "gain": -1}, {"gain": "--gain"})
    assert StrideStep.required() == ("scale",)
    assert StrideStep.field_names() == ("scale", "axes", "gain")


def test_cli_builds_a_registered_step_from_its_options(tmp_path, phantom3d, stride_registered, capsys):
    scan = write_volume(phantom3d, tmp_path / "hr.nii.gz")
    out = tmp_path / "lr.nii.gz"
    assert main(["degrade", str(scan), str(out), "--method", "stride", "--scale", "2", "--axes", "0,1,2",
                 "--snr", "40"]) == 0
    assert "stride:scale=2,axes=0+1+2;noise:snr=40.0" in capsys.readouterr().out
    assert read_volume(out).shape == (24, 20, 6)
    assert main(["degrade", str(scan), str(tmp_path / "x.nii.gz"), "--method", "stride"]) == 1
    assert "--scale is required for --method stride" in capsys.readouterr().err
    assert main(["degrade", str(scan), str(tmp_path / "x.nii.gz"), "--method", "stride", "--scale", "2",
                 "--window", "hamming"]) == 1
    assert "--window applies to --method kspace only" in capsys.readouterr().err
