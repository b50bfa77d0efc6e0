"""Typed data configuration: the YAML files in ``configs/data/`` (one per study pipeline).

A data config has two sections::

    name: cardiac
    prepare:            # PrepareOptions: `mrisr prepare SOURCE OUT --config FILE`
      resize: 256
      roi_from_masks: true
    dataset:            # DatasetOptions: how training builds SRDataset from the prepared folder
      degradation: "block:scale=3"
      patch_size: 48

Values are validated where they are read (unknown keys and wrong types raise :class:`ConfigError`
naming the key). ``overrides`` such as ``"prepare.resize=64"`` (value parsed as YAML) change a copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from mrisr.data.prepare import PrepareOptions
from mrisr.errors import ConfigError


@dataclass(frozen=True)
class DatasetOptions:
    """Arguments of :class:`~mrisr.data.datasets.SRDataset` other than root, split and seed."""

    degradation: Any = "bicubic:scale=2"
    patch_size: int | tuple[int, ...] | None = None
    augment: bool = True
    dims: int = 2
    context_slices: int = 0
    degrade_margin: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.patch_size, list):
            object.__setattr__(self, "patch_size", tuple(int(v) for v in self.patch_size))
        if self.dims not in (2, 3):
            raise ConfigError(f"dataset.dims: 2 or 3, got {self.dims!r}")
        if not isinstance(self.augment, bool):
            raise ConfigError("dataset.augment: true or false")
        if self.degrade_margin is not None and (not isinstance(self.degrade_margin, int) or self.degrade_margin < 0):
            raise ConfigError(f"dataset.degrade_margin: null (whole image) or pixels >= 0, got {self.degrade_margin!r}")
        if not isinstance(self.context_slices, int) or self.context_slices < 0:
            raise ConfigError(f"dataset.context_slices: a non-negative integer, got {self.context_slices!r}")
        self._check_degradation()

    def _check_degradation(self) -> None:
        """A misspelt degradation or a patch size the scale does not divide fails when the config is read
        (`mrisr prepare --config`), not hours later when training builds its dataset."""
        from mrisr.degrade.chain import build_degradation

        try:
            deg = build_degradation(self.degradation)
        except ConfigError as exc:
            raise ConfigError(f"dataset.degradation: {exc}") from None
        if self.patch_size is None:
            return
        f = deg.factors(self.dims)
        factors = f if self.dims == 2 else (f[2], f[0], f[1])  # items are (D, H, W), the slice axis first
        sizes = (self.patch_size,) * self.dims if isinstance(self.patch_size, int) else tuple(self.patch_size)
        if len(sizes) != self.dims or any(not isinstance(p, int) or p <= 0 for p in sizes):
            raise ConfigError(f"dataset.patch_size: a positive integer or {self.dims} of them, got {self.patch_size!r}")
        if any(p % k for p, k in zip(sizes, factors, strict=True)):
            raise ConfigError(f"dataset.patch_size {self.patch_size} must be a multiple of the degradation's "
                              f"factors {factors} ({deg.spec})")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> DatasetOptions:
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"dataset: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**values)

    def build(self, root: str | Path, split: str, seed: int = 0, augment: bool | None = None):  # type: ignore[no-untyped-def]
        """The :class:`~mrisr.data.datasets.SRDataset` of ``split`` (``augment`` None: as configured,
        which callers usually turn off for validation and test)."""
        from mrisr.data.datasets import SRDataset

        return SRDataset(root, split, self.degradation, patch_size=self.patch_size,
                         augment=self.augment if augment is None else augment, seed=seed, dims=self.dims,
                         context_slices=self.context_slices, degrade_margin=self.degrade_margin)


@dataclass(frozen=True)
class DataConfig:
    name: str = "data"
    description: str = ""
    prepare: PrepareOptions = field(default_factory=PrepareOptions)
    dataset: DatasetOptions = field(default_factory=DatasetOptions)

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any]) -> DataConfig:
        unknown = sorted(set(doc) - {"name", "description", "prepare", "dataset"})
        if unknown:
            raise ConfigError(f"data config: unknown key(s) {', '.join(unknown)} (known: name, description, prepare, dataset)")
        for section in ("prepare", "dataset"):
            if doc.get(section) is not None and not isinstance(doc[section], Mapping):
                raise ConfigError(f"{section}: expected a mapping of options")
        try:
            prepare = PrepareOptions.from_mapping(doc.get("prepare") or {})
        except TypeError as exc:
            raise ConfigError(f"prepare: {exc}") from None
        return cls(str(doc.get("name", "data")), str(doc.get("description", "")), prepare,
                   DatasetOptions.from_mapping(doc.get("dataset")))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "prepare": self.prepare.to_dict(),
                "dataset": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.dataset).items()}}


def apply_overrides(doc: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set ``section.key=value`` entries (value parsed as YAML) in a copy of a config mapping."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in doc.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. prepare.resize=128")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def load_data_config(path: str | Path, overrides: Sequence[str] = ()) -> DataConfig:
    """Read and validate a data config YAML file (see the module docstring)."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML ({exc})") from None
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    return DataConfig.from_mapping(apply_overrides(dict(doc), overrides))
