"""Data configs (``configs/data/*.yaml``, one per study pipeline) and the one dataset-options class.

A data config has two sections::

    name: cardiac
    prepare:            # PrepareOptions: `mrisr prepare SOURCE OUT --config FILE`
      resize: 256
      roi_from_masks: true
    dataset:            # DatasetOptions: how training builds SRDataset from the prepared folder
      degradation: "block:scale=3,grid=original"
      patch_size: 96

**Who owns the dataset options** (degradation, patch_size, augment, dims, context_slices,
degrade_margin): each run reads them from exactly one place. A training config's ``data:`` section
(:class:`mrisr.train.config.DataConfig`, a :class:`DatasetOptions` plus the folder, splits and loader
settings) either sets them itself, or names a data config with ``data.config: data/cardiac.yaml``
(relative to the training config's folder) and takes that file's ``dataset:`` section. A dataset
option written in both files is a :class:`~mrisr.errors.ConfigError` naming the key and the file, so
the two can never disagree silently; ``--set data.patch_size=...`` on the command line overrides
either (it is recorded in the run's ``config.yaml``, which holds the merged, self-contained section).

Everything goes through :mod:`mrisr.config`: unknown keys and wrong types raise ConfigError naming the
full key (``dataset.patchsize``), ``overrides`` such as ``"prepare.resize=64"`` use the same
``a.b.c=value`` syntax as ``mrisr train --set``. The ``dataset:`` section is also checked against the
degradation when the file is read, so a misspelt spec fails at ``mrisr prepare``, not hours later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mrisr.config import apply_overrides, from_mapping, read_yaml
from mrisr.data.prepare import PrepareOptions
from mrisr.data.slices import to_stack_order
from mrisr.errors import ConfigError

if TYPE_CHECKING:
    from mrisr.data.datasets import SRDataset


@dataclass(frozen=True)
class DatasetOptions:
    """Arguments of :class:`~mrisr.data.datasets.SRDataset` other than root, split and seed.

    ``degradation``: a :mod:`mrisr.degrade.chain` spec (string, mapping or list of steps).
    ``patch_size``: the high-resolution patch in pixels/voxels, one number or one per axis (3D:
    ``[S, H, W]``, slices first: stack order, :mod:`mrisr.data.slices`); ``null`` = whole slices/volumes.
    ``augment``: flips, rot90, gamma/gain.
    ``dims``: 2 (slices) or 3 (volumes). ``context_slices``: neighbours on each side as extra LR
    channels (>= 0). ``degrade_margin``: degrade only the patch plus this margin (px, >= 0) instead
    of the whole slice (faster; exact for local degradations); ``null`` = the whole slice.
    """

    degradation: str | dict[str, Any] | list[Any] = "bicubic:scale=2"
    patch_size: int | list[int] | None = 64
    augment: bool = True
    dims: Literal[2, 3] = 2
    context_slices: int = 0
    degrade_margin: int | None = None

    def check_values(self, key: str) -> None:
        """Ranges that types alone cannot express; ``key`` is the section (``data``, ``dataset``)."""
        if self.context_slices < 0:
            raise ConfigError(f"{key}.context_slices: must be >= 0, got {self.context_slices}")
        if self.degrade_margin is not None and self.degrade_margin < 0:
            raise ConfigError(f"{key}.degrade_margin: null (whole image) or pixels >= 0, got {self.degrade_margin}")

    def check_degradation(self, key: str) -> None:
        """A misspelt degradation or a patch size the scale does not divide fails when the config is read
        (`mrisr prepare --config`), not hours later when training builds its dataset."""
        from mrisr.degrade.chain import build_degradation

        try:
            deg = build_degradation(self.degradation)
        except ConfigError as exc:
            raise ConfigError(f"{key}.degradation: {exc}") from None
        if self.patch_size is None:
            return
        f = deg.factors(self.dims)
        factors = f if self.dims == 2 else to_stack_order(f)  # 3D patch sizes are in stack order (S, H, W)
        sizes = (self.patch_size,) * self.dims if isinstance(self.patch_size, int) else tuple(self.patch_size)
        if len(sizes) != self.dims or any(p <= 0 for p in sizes):
            raise ConfigError(f"{key}.patch_size: a positive integer or {self.dims} of them, got {self.patch_size!r}")
        if any(p % k for p, k in zip(sizes, factors, strict=True)):
            raise ConfigError(f"{key}.patch_size {self.patch_size} must be a multiple of the degradation's "
                              f"factors {factors} ({deg.spec})")

    def for_validation(self, patch_size: int | list[int] | None = None) -> DatasetOptions:
        """The options of validation/test samples: no augmentation, the whole image degraded, and
        ``patch_size`` (default whole slices/volumes)."""
        return DatasetOptions(degradation=self.degradation, patch_size=patch_size, augment=False, dims=self.dims,
                              context_slices=self.context_slices, degrade_margin=None)

    def build(self, root: str | Path, split: str, seed: int = 0, augment: bool | None = None) -> SRDataset:
        """The :class:`~mrisr.data.datasets.SRDataset` of ``split`` (``augment`` None: as configured,
        which callers usually turn off for validation and test)."""
        from mrisr.data.datasets import SRDataset

        return SRDataset(root, split, self.degradation, patch_size=self.patch_size,
                         augment=self.augment if augment is None else augment, seed=seed, dims=self.dims,
                         context_slices=self.context_slices, degrade_margin=self.degrade_margin)


@dataclass(frozen=True)
class DataPipelineConfig:
    """One data config file: how a study's scans are prepared and how its training samples are built."""

    name: str = "data"
    description: str = ""
    prepare: PrepareOptions = field(default_factory=PrepareOptions)
    dataset: DatasetOptions = field(default_factory=DatasetOptions)

    @classmethod
    def from_mapping(cls, doc: Any) -> DataPipelineConfig:
        """Validate raw data (YAML, overrides applied); ConfigError names the full key."""
        cfg = from_mapping(cls, doc)
        cfg.dataset.check_values("dataset")
        cfg.dataset.check_degradation("dataset")
        return cfg


def load_data_config(path: str | Path | None, overrides: Sequence[str] = ()) -> DataPipelineConfig:
    """Read and validate a data config YAML file (see the module docstring); ``path`` None: no file,
    only the overrides (``mrisr prepare --set prepare.resize=128`` without ``--config``)."""
    doc = read_yaml(path) if path is not None else {}
    return DataPipelineConfig.from_mapping(apply_overrides(doc, overrides))
