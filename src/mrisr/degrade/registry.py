"""Degradation names -> step classes: the one table that spec strings, configs and the CLI look names up in.

One line per step, ``name: "module:Class"``. A class is imported when it is first looked up, so listing
the names (``mrisr degrade --help``) imports neither torch nor the physics modules. Each class declares its
own fields, parsing and checks (:class:`mrisr.degrade.step.Step`); a new degradation is its module (the
operation and its step), a line here and its test.
"""

from __future__ import annotations

import importlib
from dataclasses import fields
from typing import TYPE_CHECKING

from mrisr.errors import ConfigError

if TYPE_CHECKING:
    from mrisr.degrade.step import Step

STEPS: dict[str, str] = {
    "kspace": "mrisr.degrade.kspace:KSpaceStep",
    "bicubic": "mrisr.degrade.resample:BicubicStep",
    "block": "mrisr.degrade.blocks:BlockStep",
    "slice": "mrisr.degrade.slice_profile:SliceStep",
    "noise": "mrisr.degrade.noise:NoiseStep",
}


def step_class(name: str) -> type[Step]:
    """The step class registered as ``name`` (case and surrounding spaces ignored).

    Raises:
        ConfigError: no step has that name.
    """
    from mrisr.degrade.step import Step

    key = str(name).strip().lower()
    if key not in STEPS:
        raise ConfigError(f"unknown degradation {name!r}; choose from {', '.join(STEPS)}")
    module, _, attr = STEPS[key].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Step) and cls.method == key):
        raise TypeError(f"registry entry {key!r} -> {STEPS[key]} is not a Step whose method is {key!r}")
    unread = [f.name for f in fields(cls) if "parse" not in f.metadata]
    if unread:
        raise TypeError(f"{STEPS[key]}: fields {unread} declare no parser (field(metadata=reads(...)))")
    return cls
