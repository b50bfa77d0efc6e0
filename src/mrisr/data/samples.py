"""Typed training samples and their batches (never bare tuples)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mrisr.errors import ConfigError


@dataclass
class Sample:
    """One low-/high-resolution pair.

    Attributes:
        lr: ``(C, h, w)`` or, 3D, ``(C, h, w, d)`` float32; ``C = 1 + 2 * context_slices`` (the centre slice
            is channel ``context_slices``), values about [0, 1].
        hr: ``(1, H, W)`` or, 3D, ``(1, H, W, S)`` (volume order, the slice axis last: :mod:`mrisr.data.slices`)
            float32 in [0, 1], the target.
        volume_id: the prepared volume it comes from (manifest ``volume_id``).
        slice_index: slice index ``s`` in the stored stack (2D), or the patch's first slice (3D).
        data_range: the intensity range of ``hr`` for PSNR/SSIM (1.0 for prepared data).
        params: degradation parameters that produced ``lr`` plus the crop/augmentation applied, e.g.
            ``{"degradation": {...}, "frame": 3, "origin": [y, x], "flip": [...], "rot90": 1}``.
    """

    lr: torch.Tensor
    hr: torch.Tensor
    volume_id: str
    slice_index: int
    data_range: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """:class:`Sample` fields stacked: ``lr (N, C, ...)``, ``hr (N, 1, ...)``, ``data_range (N,)``, lists for the rest."""

    lr: torch.Tensor
    hr: torch.Tensor
    volume_id: list[str]
    slice_index: list[int]
    data_range: torch.Tensor
    params: list[dict[str, Any]]

    def __len__(self) -> int:
        return int(self.hr.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch with its tensors on ``device``."""
        return Batch(self.lr.to(device, non_blocking=non_blocking), self.hr.to(device, non_blocking=non_blocking),
                     self.volume_id, self.slice_index, self.data_range.to(device), self.params)

    def pin_memory(self) -> Batch:
        """Called by ``DataLoader(pin_memory=True)``."""
        return Batch(self.lr.pin_memory(), self.hr.pin_memory(), self.volume_id, self.slice_index,
                     self.data_range.pin_memory(), self.params)


def collate_samples(samples: Sequence[Sample]) -> Batch:
    """Stack samples of equal shapes into a :class:`Batch` (the ``collate_fn`` for ``DataLoader``).

    Raises:
        ConfigError: shapes differ (use a ``patch_size``, or ``crop`` when preparing, to batch > 1); a
            user's configuration problem, so the CLI shows it as one line.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    shapes = {(tuple(s.lr.shape), tuple(s.hr.shape)) for s in samples}
    if len(shapes) > 1:
        raise ConfigError(
            f"samples of different shapes cannot be batched: {sorted(shapes)}; set patch_size (or prepare with crop)"
        )
    return Batch(
        lr=torch.stack([s.lr for s in samples]),
        hr=torch.stack([s.hr for s in samples]),
        volume_id=[s.volume_id for s in samples],
        slice_index=[int(s.slice_index) for s in samples],
        data_range=torch.tensor([float(s.data_range) for s in samples], dtype=torch.float32),
        params=[s.params for s in samples],
    )
