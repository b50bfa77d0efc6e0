"""Held-out evaluation cases: the real scans no shipped model trained on, cut to a size that scores fast.

:func:`central_slabs` cuts a 3D volume into contiguous slabs of ``n`` slices through its centre, one per
orientation (slices normal to each array axis, moved last so that a 2D model's slice axis is 2); the
affine of each slab is the original's with its columns permuted and its origin moved to the slab's first
voxel, so every slab voxel keeps its world position. :func:`write_heldout_cases` writes every held-out
source of :mod:`mrisr.data.sources` found on this machine (whole when small, as slabs when large) as
NIfTI files into a folder that ``mrisr evaluate`` scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrisr.data.sources import find_sources
from mrisr.io.volume import Volume

VIEWS = ((2, "axial"), (1, "coronal"), (0, "sagittal"))


def central_slabs(volume: Volume, n: int) -> dict[str, Volume]:
    """``{view: slab}`` of ``n`` contiguous slices through the centre of a 3D ``volume`` (first frame of 4D).

    A volume with at most ``n`` slices along axis 2 (or a 2D one) is returned whole as ``{"whole": ...}``.
    """
    if n < 1:
        raise ValueError(f"slab size must be >= 1, got {n}")
    data = volume.data if volume.ndim <= 3 else volume.data[..., 0]
    if data.ndim == 2 or data.shape[2] <= n:
        return {"whole": Volume(np.asarray(data, dtype=np.float32), volume.affine, {})}
    out = {}
    for axis, view in VIEWS:
        size = data.shape[axis]
        lo = max(0, size // 2 - n // 2)
        idx: list[slice] = [slice(None)] * 3
        idx[axis] = slice(lo, lo + n)
        part = np.ascontiguousarray(np.moveaxis(data[tuple(idx)], axis, 2), dtype=np.float32)
        perm = [a for a in range(3) if a != axis] + [axis]
        aff = volume.affine.copy()
        start = np.zeros(3)
        start[axis] = lo
        aff[:3, 3] = volume.affine[:3, :3] @ start + volume.affine[:3, 3]
        aff[:3, :3] = volume.affine[:3, :3][:, perm]
        out[view] = Volume(part, aff, {})
    return out


def write_heldout_cases(out_dir: str | Path, n: int = 8, force: bool = False) -> list[Path]:
    """Write each installed held-out image source as ``OUT/<source>[_<view>].nii.gz``; returns the paths.

    Existing files are kept unless ``force`` (they are derived from read-only package data).
    """
    from mrisr.io import read_volume, write_volume

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for src in find_sources(roles=("heldout",), kinds=("image",)):
        assert src.path is not None
        vol = read_volume(src.path)
        for view, slab in central_slabs(vol, n).items():
            dst = out / (f"{src.name}.nii.gz" if view == "whole" else f"{src.name}_{view}.nii.gz")
            if force or not dst.exists():
                write_volume(slab, dst, force=force)
            written.append(dst)
    return written
