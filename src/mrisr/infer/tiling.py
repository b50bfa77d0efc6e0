"""Overlapping tiles blended with a smooth window: 3D networks over whole volumes (:func:`run_patches`) and 2D
networks over slices too large for one forward pass (:func:`blend_tiles`, called by
:func:`mrisr.infer.engine.run_slices`).

A volume (or a batch of slices) is covered by a regular grid of tiles (:func:`patch_starts`: the last tile
of each axis ends at the border, so neighbours share at least ``overlap`` coarse voxels). Each tile's output
is multiplied by a separable window (:func:`tile_window`) and accumulated; the sum of the windows is divided
out at the end. Along an axis the window is

* 0 over a margin at a side that faces a neighbour tile, where the tile's output is wrong (its network saw
  the tile's edge, not the image): the network's *reach*, measured once per run (:func:`measure_reach`: how
  far in output voxels a change of one input voxel travels), when the overlap holds twice that, else a
  quarter of the overlap,
* a raised-cosine (``sin^2``) ramp from 0 to 1 across the rest of the overlap, so that the two neighbours'
  windows add up to 1 there and the seam is smooth,
* 1 elsewhere, and 1 up to a side that lies on the image border (no down-weighting where no other tile
  covers the voxels).

So for a translation-equivariant network (convolutions with zero padding) whose reach fits twice into the
overlap, the blended output equals one forward pass over the whole image to float rounding, borders
included (the overlap a crop of the tiles would need, and the ramp spans what is left of it); for networks
that see further, the seams are cosine blends of two estimates over the middle half of the overlap.
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


def window_margin(overlap: int, factor: int, reach: int | None) -> int:
    """Zero margin (output voxels) of a tile side facing a neighbour: ``reach`` (output voxels) when the
    overlap (``overlap * factor`` output voxels) leaves a ramp of at least one voxel beyond twice it, else
    (or without a measured reach) a quarter of the overlap."""
    if reach is not None and 2 * reach < overlap * factor:
        return max(0, int(reach))
    return (overlap // 4) * factor


def tile_window(p: int, factor: int, overlap: int, at_low_border: bool, at_high_border: bool,
                reach: int | None = None) -> np.ndarray:
    """1D blending window of one tile on the output grid: length ``p * factor``, values in [0, 1], float32.

    ``p`` and ``overlap`` are in coarse voxels, ``reach`` in output voxels (:func:`window_margin`); a side on
    the image border (``at_*_border``) is not tapered. See the module docstring for the shape (zero margin,
    ``sin^2`` ramp over the rest of the overlap, plateau of 1).
    """
    n = p * factor
    w = np.ones(n, dtype=np.float64)
    margin = window_margin(overlap, factor, reach)
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


def measure_reach(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, factors: Sequence[int],
                  size: Sequence[int]) -> list[int | None]:
    """How far (output voxels, per spatial dim) the output of ``fn`` changes when one input voxel changes.

    Two forward passes on a ``size`` crop of ``x`` (real data, so that activations are not all off), the
    second with its centre voxel raised by 1 in every channel; the reach is the farthest changed output voxel
    from the centre voxel's own output block. ``None`` for a dim where the change reaches the crop's edge
    (the reach is at least that: too far to measure here).
    """
    crop = x[(slice(0, 1), slice(None), *(slice(0, int(s)) for s in size))].clone()
    centre = [int(s) // 2 for s in size]
    bumped = crop.clone()
    at: tuple[Any, ...] = (slice(None), slice(None), *centre)
    bumped[at] += 1.0
    diff = (fn(bumped).float() - fn(crop).float()).abs()[0, 0]
    changed = diff > 1e-5 * max(float(diff.max()), 1e-30)  # not float rounding of far voxels
    reach: list[int | None] = []
    for d, (c, k) in enumerate(zip(centre, factors, strict=True)):
        other = tuple(i for i in range(changed.ndim) if i != d)
        hit = torch.nonzero(changed.any(dim=other) if other else changed).flatten()
        if hit.numel() == 0:
            reach.append(0)
            continue
        lo, hi = int(hit.min()), int(hit.max())
        if lo == 0 or hi == changed.shape[d] - 1:
            reach.append(None)
        else:
            reach.append(max(c * k - lo, hi - ((c + 1) * k - 1), 0))
    return reach


def _check_overlap(tile: Sequence[int], overlap: int) -> int:
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    return min(overlap, max(0, min(tile) - 1))


def blend_tiles(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, factors: Sequence[int],
                tile: Sequence[int], overlap: int, tiles_per_call: int = 1, out: torch.Tensor | None = None,
                progress: Any = None, reach: Sequence[int | None] | None = None) -> torch.Tensor:
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
        reach: the network's reach per spatial dim in output voxels (:func:`measure_reach`, which runs when
            this is ``None`` and there is more than one tile).

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
    if reach is None:
        multi = any(len(g) > 1 for g in grids)
        # a crop just large enough to tell whether the reach fits twice into the overlap
        probe = [min(pp, 2 * overlap + 1) for pp in p]
        reach = measure_reach(fn, x, f, probe) if multi and overlap > 0 else [None] * len(p)
    windows = [{s: torch.from_numpy(tile_window(pp, k, overlap, s == 0, s + pp == n, r)).to(x.device)
                for s in g} for g, pp, k, n, r in zip(grids, p, f, spatial, reach, strict=True)]
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
