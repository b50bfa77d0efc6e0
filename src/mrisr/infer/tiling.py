"""Overlapping tiles blended with a smooth window: 3D networks over whole volumes (:func:`run_patches`) and 2D
networks over slices too large for one forward pass (:func:`blend_tiles`, called by
:func:`mrisr.infer.engine.run_slices`).

A volume (or a batch of slices) is covered by a regular grid of tiles (:func:`patch_starts`: the last tile
of each axis ends at the border, so neighbours share at least ``overlap`` coarse voxels). Each tile's output
is multiplied by a separable window (:func:`tile_window`) and accumulated; the sum of the windows is divided
out at the end. Along an axis the window is

* 0 over the first and last ``overlap // 4`` coarse voxels of a side that faces a neighbour tile (where the
  tile's output is wrong: its network saw the tile's edge, not the image),
* a raised-cosine (``sin^2``) ramp from 0 to 1 across the middle half of the overlap, so that the two
  neighbours' windows add up to 1 there and the seam is smooth,
* 1 elsewhere, and 1 up to a side that lies on the image border (no down-weighting where no other tile
  covers the voxels).

So for a translation-equivariant network (convolutions with zero padding) whose receptive field reaches at
most ``overlap // 4`` coarse voxels, the blended output equals one forward pass over the whole image to float
rounding, borders included; for networks that see further, the seams are cosine blends of two estimates.
Because the window is separable and the tiles form a product grid, the sum of the windows is a product of
one 1D sum per axis, so blending needs no weight volume: the only large array is the output accumulator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


def patch_starts(n: int, p: int, step: int) -> list[int]:
    """Start indices of tiles of length ``p`` every ``step`` voxels along an axis of length ``n``; the last
    tile ends at ``n`` (so it may overlap its neighbour by more than ``p - step``)."""
    if n <= p:
        return [0]
    s = list(range(0, n - p, step))
    return [*s, n - p]


def tile_window(p: int, factor: int, overlap: int, at_low_border: bool, at_high_border: bool) -> np.ndarray:
    """1D blending window of one tile on the output grid: length ``p * factor``, values in [0, 1], float32.

    ``p`` and ``overlap`` are in coarse voxels; a side on the image border (``at_*_border``) is not tapered.
    See the module docstring for the shape (zero margin of ``overlap // 4``, ``sin^2`` ramp, plateau of 1).
    """
    n = p * factor
    w = np.ones(n, dtype=np.float64)
    margin = (overlap // 4) * factor
    ramp = overlap * factor - 2 * margin
    if overlap > 0 and ramp > 0:
        # sin^2 over the ramp, sampled at voxel centres: w(i) + w(ramp - 1 - i) = 1
        up = np.sin(0.5 * np.pi * (np.arange(ramp) + 0.5) / ramp) ** 2
        edge = np.concatenate([np.zeros(margin), up])[:n]
        if not at_low_border:
            w[:len(edge)] = np.minimum(w[:len(edge)], edge)
        if not at_high_border:
            w[n - len(edge):] = np.minimum(w[n - len(edge):], edge[::-1])
    return w.astype(np.float32)


def tile_grid(shape: Sequence[int], tile: Sequence[int], overlap: int) -> list[list[int]]:
    """Tile starts per axis for an image of ``shape`` (coarse voxels), tiles ``min(tile, n)`` long."""
    grids = []
    for n, t in zip(shape, tile, strict=True):
        p = min(int(t), int(n))
        grids.append(patch_starts(int(n), p, max(1, p - overlap)))
    return grids


def _check_overlap(tile: Sequence[int], overlap: int) -> int:
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    return min(overlap, max(0, min(tile) - 1))


def blend_tiles(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, factors: Sequence[int],
                tile: Sequence[int], overlap: int, tiles_per_call: int = 1, out: torch.Tensor | None = None,
                progress: Any = None) -> torch.Tensor:
    """Apply ``fn`` to overlapping tiles of ``x`` and blend the results (module docstring).

    Args:
        fn: the network: ``(M, C, *t) -> (M, 1, *(t * factors))`` for tiles ``t`` (``M`` = tiles x ``N``).
        x: ``(N, C, *S)`` input, 2 or 3 spatial dims ``S`` (coarse voxels), on the device ``fn`` wants.
        factors: output voxels per coarse voxel, one per spatial dim.
        tile: tile edge per spatial dim in coarse voxels (clipped to ``S``).
        overlap: coarse voxels shared by neighbouring tiles (clipped to ``min(tile) - 1``).
        tiles_per_call: tile positions stacked into one call of ``fn`` (3D: the batch size; 2D: 1, as
            ``x`` already holds a batch of slices).
        out: optional ``(N, 1, *(S * factors))`` float32 accumulator to fill (e.g. a view of a NumPy array).
        progress: object with ``update(n)`` called with the tile positions done.

    Returns:
        ``(N, 1, *(S * factors))`` float32 on ``x``'s device (``out`` when given). Memory: that array plus one
        call's tiles; no weight array (the window sums are separable).
    """
    spatial = tuple(int(n) for n in x.shape[2:])
    f = [int(k) for k in factors]
    p = [min(int(t), n) for t, n in zip(tile, spatial, strict=True)]
    overlap = _check_overlap(p, overlap)
    grids = tile_grid(spatial, p, overlap)
    n_img = x.shape[0]
    out_shape = (n_img, 1, *(n * k for n, k in zip(spatial, f, strict=True)))
    if out is None:
        out = torch.zeros(out_shape, dtype=torch.float32, device=x.device)
    else:
        if tuple(out.shape) != out_shape:
            raise ValueError(f"out has shape {tuple(out.shape)}, expected {out_shape}")
        out.zero_()
    windows = [{s: torch.from_numpy(tile_window(pp, k, overlap, s == 0, s + pp == n)).to(x.device)
                for s in g} for g, pp, k, n in zip(grids, p, f, spatial, strict=True)]
    corners = [tuple(c) for c in np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, len(grids)).tolist()]
    nd = len(spatial)
    for i in range(0, len(corners), max(1, tiles_per_call)):
        chunk = corners[i:i + max(1, tiles_per_call)]
        crops = [x[(slice(None), slice(None), *(slice(s, s + pp) for s, pp in zip(c, p, strict=True)))]
                 for c in chunk]
        y = fn(torch.cat(crops) if len(crops) > 1 else crops[0])
        for j, c in enumerate(chunk):
            w = windows[0][c[0]]
            for d in range(1, nd):
                w = w[..., None] * windows[d][c[d]]
            region = (slice(None), slice(None), *(slice(s * k, (s + pp) * k) for s, pp, k in zip(c, p, f, strict=True)))
            out[region] += y[j * n_img:(j + 1) * n_img].float() * w
        if progress is not None:
            progress.update(len(chunk))
    for d in range(nd):
        total = torch.zeros(out_shape[2 + d], dtype=torch.float32, device=x.device)
        for s, w in windows[d].items():
            total[s * f[d]:(s + p[d]) * f[d]] += w
        if not bool(torch.all(total > 0)):  # cannot happen with patch_starts' grids; guards a future change
            raise RuntimeError("tile windows leave voxels without weight")
        shape = [1] * (2 + nd)
        shape[2 + d] = -1
        out /= total.view(shape)
    return out


def run_patches(model: nn.Module, vol: np.ndarray, patch_size: int, overlap: int, batch_size: int,
                device: torch.device, progress: Any = None, *, engine: str = "auto", threads: int | None = None,
                out: np.ndarray | None = None) -> np.ndarray:
    """Run a 3D network over a normalised ``(A, B, C)`` array in overlapping cubic patches, blended.

    Args:
        model: 3D generator (``factors`` gives the output voxels per coarse voxel along each axis).
        vol: ``(A, B, C)`` normalised intensities, any float dtype (read, never modified).
        patch_size: patch edge in coarse voxels (clipped to the volume).
        overlap: coarse voxels shared by neighbouring patches (the window tapers over it, see the module
            docstring; the output is exact where the receptive field reaches at most ``overlap // 4``).
        batch_size: patches per forward pass.
        device: where the network runs.
        progress: object with ``update(n)`` called with the number of patches done.
        engine: ``"auto"``, ``"torch"`` or ``"onnx"`` (:func:`mrisr.infer.engine.resolve_engine`).
        threads: CPU threads (:func:`mrisr.infer.engine.choose_threads`).
        out: optional float32 array ``(A * f0, B * f1, C * f2)`` to write into.

    Returns:
        ``(A * f0, B * f1, C * f2)`` float32 (``out`` when given). Memory: the output plus one batch of patches
        (input and output, and the network's feature maps).
    """
    from mrisr.infer.engine import NetworkRunner

    runner = NetworkRunner(model, device, engine=engine, threads=threads)
    f = [int(v) for v in getattr(model, "factors")]  # noqa: B009
    out_shape = tuple(n * k for n, k in zip(vol.shape, f, strict=True))
    if out is None:
        out = np.empty(out_shape, dtype=np.float32)
    elif out.shape != out_shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {out_shape}")
    src = torch.from_numpy(np.ascontiguousarray(vol, dtype=np.float32))[None, None]
    acc = torch.from_numpy(out)[None, None]
    p = [min(patch_size, n) for n in vol.shape]
    if device.type == "cpu":
        blend_tiles(runner.forward, src, f, p, overlap, batch_size, out=acc, progress=progress)
    else:
        out[...] = blend_tiles(runner.forward, src.to(device), f, p, overlap, batch_size,
                               progress=progress)[0, 0].cpu().numpy()
    return out


def n_patches(shape: Sequence[int], patch_size: int, overlap: int) -> int:
    """Number of patches :func:`run_patches` runs on a volume of ``shape`` (coarse voxels)."""
    p = [min(patch_size, int(n)) for n in shape]
    return math.prod(len(g) for g in tile_grid(shape, p, _check_overlap(p, overlap)))
