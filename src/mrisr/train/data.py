"""Datasets and loaders for training and validation, built from the config's data section
(:class:`~mrisr.train.config.DataConfig`: its dataset options build the SRDataset, see
:meth:`mrisr.data.config.DatasetOptions.build`).

The order of training samples is a pure function of ``(seed, epoch)`` and the position in the epoch
(:class:`~mrisr.train.distributed.ResumableSampler`), and each sample's randomness a function of
``(seed, epoch, index)`` (``SRDataset.set_epoch``), so a resumed or sharded run sees exactly the
samples an uninterrupted single-process run would.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from mrisr.errors import ConfigError
from mrisr.train.config import DataConfig
from mrisr.train.distributed import DistEnv, ResumableSampler


def data_key(cfg: DataConfig) -> str:
    """Identity of a data section (phases with equal keys share datasets, loaders and epochs)."""
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str)


def build_dataset(cfg: DataConfig, split: str, seed: int, train: bool,
                  patch_size: int | list[int] | None = None, key: str = "data") -> Dataset[Any]:
    """An :class:`mrisr.data.datasets.SRDataset` (or ``PairedDataset`` with ``lr_root``) for ``split``;
    validation takes no augmentation, degrades whole slices and uses ``patch_size`` (default whole).
    Errors are ConfigErrors naming ``key`` (the config section, e.g. ``data`` or ``phases.1.data``)."""
    from mrisr.data.datasets import PairedDataset
    from mrisr.errors import MrisrError

    if not cfg.root:
        raise ConfigError(f"{key}.root: the prepared data folder (output of `mrisr prepare`) is required")
    for sub, folder in (("root", cfg.root), ("lr_root", cfg.lr_root)):
        if folder is None:
            continue
        if not Path(folder).is_dir():
            raise ConfigError(f"{key}.{sub}: {folder} does not exist")
        if not (Path(folder) / "manifest.json").is_file():
            raise ConfigError(f"{key}.{sub}: {folder} is not a prepared data folder (no manifest.json); "
                              f"prepare it with `mrisr prepare SOURCE {folder} --config configs/data/...`")
    options = cfg if train else cfg.for_validation(patch_size)
    which = "train_split" if train else "val_split"
    try:
        if cfg.lr_root:
            ds: Dataset[Any] = PairedDataset(cfg.root, cfg.lr_root, split, patch_size=options.patch_size,
                                             augment=options.augment, seed=seed)
        else:
            ds = options.build(cfg.root, split, seed)
    except MrisrError as exc:
        where = f"{key}.patch_size" if "patch_size" in str(exc) else f"{key} ({which} {split!r})"
        raise ConfigError(f"{where}: {exc}") from None
    if len(ds) == 0:  # type: ignore[arg-type]
        raise ConfigError(f"{key}.{which}: split {split!r} of {cfg.root} holds no "
                          f"{'training' if train else 'validation'} samples")
    return ds


def local_batch_size(cfg: DataConfig, env: DistEnv) -> int:
    if cfg.batch_size % env.world_size:
        raise ConfigError(f"data.batch_size: {cfg.batch_size} is not divisible by the {env.world_size} processes")
    return cfg.batch_size // env.world_size


def steps_per_epoch(n_samples: int, cfg: DataConfig, env: DistEnv) -> int:
    """Whole global batches per epoch; the same for any number of processes (samples that do not fill
    a batch wait for a later epoch's permutation)."""
    steps = (n_samples // env.world_size) // local_batch_size(cfg, env)
    if steps < 1:
        raise ConfigError(f"data.batch_size: {cfg.batch_size} is more than the {n_samples} training samples "
                          f"of split {cfg.train_split!r} in {cfg.root}")
    return steps


class TrainLoader:
    """This rank's training batches of one dataset, epoch after epoch.

    One DataLoader (workers persist across epochs) whose sampler is repositioned before each epoch:
    ``epoch(e, skip)`` returns an iterator over epoch ``e`` starting after ``skip`` consumed batches.
    """

    def __init__(self, dataset: Dataset[Any], cfg: DataConfig, env: DistEnv, seed: int):
        from mrisr.data.samples import collate_samples

        self.dataset = dataset
        self.batch = local_batch_size(cfg, env)
        self.sampler = ResumableSampler(dataset, env, seed=seed)
        # A loader-owned generator: creating an iterator draws a base seed from it, which must not come
        # from (and advance) the global RNG that the training stream and its checkpoints depend on.
        self.loader = DataLoader(dataset, batch_size=self.batch, sampler=self.sampler, drop_last=True,
                                 num_workers=cfg.num_workers, collate_fn=collate_samples,
                                 pin_memory=env.device.type == "cuda",
                                 generator=torch.Generator().manual_seed(seed),
                                 persistent_workers=cfg.num_workers > 0)

    def epoch(self, epoch: int, skip_batches: int = 0) -> Iterator[Any]:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)  # shared memory: persistent workers see it
        self.sampler.set_position(epoch, skip_batches * self.batch)
        return iter(self.loader)


def collate_by_shape(samples: list[Any]) -> list[Any]:
    """Batches of consecutive equal-shape samples (whole validation slices may differ in size)."""
    from mrisr.data.samples import collate_samples

    groups: list[list[Any]] = []
    for s in samples:
        if groups and groups[-1][0].hr.shape == s.hr.shape and groups[-1][0].lr.shape == s.lr.shape:
            groups[-1].append(s)
        else:
            groups.append([s])
    return [collate_samples(g) for g in groups]


def val_loader(dataset: Dataset[Any], batch_size: int, max_samples: int | None) -> DataLoader[Any]:
    """Validation in a fixed order: ``max_samples`` samples spread evenly over the split (all by default).
    Yields lists of batches (see :func:`collate_by_shape`)."""
    n = len(dataset)  # type: ignore[arg-type]
    if max_samples is not None and max_samples < n:
        picks = sorted({round(i * (n - 1) / max(1, max_samples - 1)) for i in range(max_samples)})
        dataset = Subset(dataset, picks)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0, collate_fn=collate_by_shape)
