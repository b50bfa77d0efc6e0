"""Sanity limits checked from headers before any large allocation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mrisr.errors import InputError

#: Largest number of voxels mrisr will allocate for one volume (2**31, 8 GiB as float32).
MAX_VOXELS = 2**31


def check_voxel_count(shape: Sequence[int], source: str | Path = "input") -> None:
    """Refuse shapes with non-positive or absurd sizes before allocating."""
    n = 1
    for s in shape:
        if int(s) <= 0:
            raise InputError(f"{source}: header claims an empty dimension (shape {tuple(shape)})")
        n *= int(s)
    if n > MAX_VOXELS:
        raise InputError(
            f"{source}: header claims {n} voxels (shape {tuple(shape)}), more than the limit of {MAX_VOXELS}"
        )
