"""Scores of one test volume against its reference: PSNR, slice-wise SSIM, 3D SSIM, NRMSE.

Conventions (the same for every method, baseline or model):

* ``data_range`` is the reference's ``max - min`` over the whole volume (never a fixed 255 or 1).
* ``psnr`` and ``nrmse`` use every voxel, or the voxels of the mask.
* ``ssim`` is 2D SSIM per slice along ``slice_axis`` (default 2, the usual slice axis), averaged over
  slices: without a mask, the mean of scikit-image's per-slice SSIM; with a mask, the mean of the stacked
  per-slice SSIM maps over the mask voxels. This is what 2D super-resolution papers report.
* ``ssim3d`` is SSIM with a cubic window (7x7x7, or the 11-tap Gaussian) over the volume (mean of the
  cropped map, or of the full map over the mask); ``None`` for 2D images or volumes thinner than the window.
* 4D volumes are scored per frame and the frame values averaged.

Computation is in float64 on ``device``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mrisr.metrics.image import crop_mean, nrmse, psnr, ssim_map, ssim_maps_slices_and_volume, window_radius

METRICS = ("psnr", "ssim", "ssim3d", "nrmse")


def _frames(a: np.ndarray, spatial: int) -> torch.Tensor:
    """``(T, 1, *spatial)`` float64 tensor of a ``(*spatial[, T])`` array."""
    arr = np.asarray(a, dtype=np.float64)
    arr = np.moveaxis(arr, -1, 0) if arr.ndim > spatial else arr[None]
    return torch.from_numpy(np.ascontiguousarray(arr))[:, None]


def score_arrays(
    reference: np.ndarray,
    test: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    spatial_ndim: int | None = None,
    gaussian: bool = False,
    nrmse_normalization: str = "euclidean",
    slice_axis: int = 2,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Score ``test`` against ``reference`` (same shape, ``(X, Y)``, ``(X, Y, Z)`` or ``(X, Y, Z, T)``).

    Args:
        reference, test: voxel arrays on the same grid.
        mask: boolean array of the spatial shape (or the full shape), or ``None`` for all voxels.
        spatial_ndim: number of spatial axes (default ``min(ndim, 3)``).
        gaussian: Wang et al.'s Gaussian SSIM instead of scikit-image's uniform 7-window.
        nrmse_normalization: ``euclidean``, ``min-max`` or ``mean``.
        slice_axis: axis of the 2D slices for ``ssim`` on 3D volumes.

    Returns:
        ``{"psnr", "ssim", "ssim3d", "nrmse", "data_range", "voxels"}`` (floats; ``ssim3d`` may be ``None``).
    """
    ref_a, test_a = np.asarray(reference), np.asarray(test)
    if ref_a.shape != test_a.shape:
        raise ValueError(f"test shape {test_a.shape} differs from reference shape {ref_a.shape}")
    nsp = min(ref_a.ndim, 3) if spatial_ndim is None else spatial_ndim
    if not -3 <= int(slice_axis) < 3:
        raise ValueError(f"slice_axis must be 0, 1 or 2, got {slice_axis}")
    dev = torch.device(device)
    ref = _frames(ref_a, nsp).to(dev)
    tst = _frames(test_a, nsp).to(dev)
    data_range = float(ref.max() - ref.min())
    if data_range <= 0:
        raise ValueError("reference is constant: its data range is 0")
    m = None
    if mask is not None:
        mk = np.asarray(mask, dtype=bool)
        if mk.shape == ref_a.shape and ref_a.ndim > nsp:
            m = _frames(mk, nsp).to(dev)
        elif mk.shape == ref_a.shape[:nsp]:
            m = torch.from_numpy(mk)[None, None].to(dev).expand_as(ref)
        else:
            raise ValueError(f"mask shape {mk.shape} does not match the volume {ref_a.shape}")
        if not bool(m.any()):
            raise ValueError("mask is empty")
    frames_with_mask = slice(None) if m is None else m.flatten(1).any(dim=1)

    out: dict[str, Any] = {"data_range": data_range}
    out["psnr"] = float(psnr(ref[frames_with_mask], tst[frames_with_mask], data_range,
                             None if m is None else m[frames_with_mask]).mean())
    out["nrmse"] = float(nrmse(ref[frames_with_mask], tst[frames_with_mask], nrmse_normalization,
                               None if m is None else m[frames_with_mask]).mean())
    r = window_radius(gaussian)

    def average(smap: torch.Tensor, crop_dims: list[int]) -> float:
        if m is None:
            return float(crop_mean(smap, r, crop_dims).mean())
        return float(smap[m.expand_as(smap)].mean())

    if nsp == 2:
        out["ssim"] = average(ssim_map(ref, tst, data_range, gaussian), [2, 3])
        out["ssim3d"] = None
    elif min(ref.shape[2:]) > 2 * r:
        ax = slice_axis % 3 + 2
        map2d, map3d = ssim_maps_slices_and_volume(ref, tst, data_range, gaussian, slice_dim=ax)
        out["ssim"] = average(map2d, [d for d in (2, 3, 4) if d != ax])
        out["ssim3d"] = average(map3d, [2, 3, 4])
    else:  # too thin for a 3D window: slice-wise only
        ax = slice_axis % 3 + 2
        as2d = lambda t: t.movedim(ax, 1).reshape(-1, 1, *[t.shape[d] for d in (2, 3, 4) if d != ax])  # noqa: E731
        smap = ssim_map(as2d(ref), as2d(tst), data_range, gaussian)
        out["ssim"] = float(crop_mean(smap, r).mean()) if m is None else float(smap[as2d(m.expand_as(ref))].mean())
        out["ssim3d"] = None
    out["voxels"] = int(ref.numel() if m is None else m.sum())
    return out

