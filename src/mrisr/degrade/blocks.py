"""Block degradation (cardiac study): every ``s x s`` block takes the value of its lower-left pixel.

Which pixel is "lower-left" depends on how the array is displayed. mrisr's Volumes hold DICOM frames as
``data[column, row]`` (``pixel_array[r, c]`` appears as ``data[c, r, k]``), so on screen display rows run
along array axis 1 and columns along axis 0. The lower-left pixel of a block is therefore at offset
``0`` along the first blocked dim ("left": the first column) and ``s - 1`` along the second ("lower":
the last row); any further blocked dim uses offset 0. For a block ``x[0:2, 0:2]`` with ``s = 2`` that is
``x[0, 1]``.

``grid="coarse"`` returns those pixels (a grid ``s`` times coarser); ``grid="original"`` repeats each one
over its block, keeping the original size as the cardiac study did. On the original grid a size that is not a
multiple of ``s`` ends with a partial block, which takes its own lower-left pixel (the kept offset clamped to
the last pixel of the image), so 256-pixel slices need no cropping for ``s = 3``. The coarse grid's affine is the grid
of blocks (:func:`mrisr.io.geometry.rescaled_affine`, voxel centre = block centre), so the kept pixel sits
``(s - 1) / 2`` fine voxels off its coarse voxel's centre along each blocked axis: the shift is part of this
degradation, as in the study.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from mrisr.degrade.step import ResamplingStep, one_of, reads

if TYPE_CHECKING:
    import numpy as np

GRIDS = ("coarse", "original")


def block_offsets(scale: int, ndims: int) -> list[int]:
    """Index of the kept pixel inside a block along each blocked dim (lower-left, see module doc)."""
    return [scale - 1 if i == 1 else 0 for i in range(ndims)]


def block_downsample(x: torch.Tensor, scale: int, dims: Sequence[int], grid: str = "coarse") -> torch.Tensor:
    """Keep the lower-left pixel of every ``scale``-sized block along ``dims`` of ``x``.

    Args:
        x: tensor whose ``dims`` sizes are multiples of ``scale`` (any size for ``grid="original"``).
        scale: block size (integer >= 1).
        dims: blocked dims of ``x``, in the order (left-right, down-up, further...).
        grid: ``"coarse"`` (size divided by ``scale``) or ``"original"`` (same size, blocks filled).
    """
    if grid not in GRIDS:
        raise ValueError(f"unknown block grid {grid!r}; choose from {', '.join(GRIDS)}")
    out = x
    for d, off in zip(dims, block_offsets(scale, len(dims)), strict=True):
        n = x.shape[d]
        if grid == "coarse":
            if n % scale:
                raise ValueError(f"size {n} along dim {d} is not divisible by block size {scale}")
            out = out.index_select(d, torch.arange(off, n, scale, device=x.device))
        else:  # one kept pixel per (possibly partial) block, repeated over the block, cut back to n
            idx = (torch.arange(-(-n // scale), device=x.device) * scale + off).clamp(max=n - 1)
            out = out.index_select(d, idx).repeat_interleave(scale, dim=d).narrow(d, 0, n)
    return out


@dataclass(frozen=True)
class BlockStep(ResamplingStep):
    """``block:scale=2,grid=coarse|original``: :func:`block_downsample` along ``axes``; ``original`` keeps the grid."""

    method: ClassVar[str] = "block"
    grid: str = field(default="coarse", metadata=reads(one_of(GRIDS, random=False)))

    def factors(self, ndim: int) -> tuple[int, ...]:
        return super().factors(ndim) if self.grid == "coarse" else (1,) * ndim

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator,
              signal: float | None = None) -> torch.Tensor:
        return block_downsample(t, params["scale"], [a + 2 for a in params["axes"]], params["grid"])
