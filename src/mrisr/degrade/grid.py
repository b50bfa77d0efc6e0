"""Volume <-> tensor plumbing shared by degradations and upscalers: layout, cropping, geometry, history.

A Volume's data is ``(X, Y)``, ``(X, Y, Z)`` or ``(X, Y, Z, T)``; tensor ops see ``(T, 1, *spatial)``
(time frames as the batch). Every grid change goes through :func:`resampled_volume`, which takes the
per-axis grid factors, checks the new voxels' shape against them, derives the affine from them with
:func:`mrisr.io.geometry.rescaled_affine` (field of view kept) and appends the record(s) to
``meta["history"]`` (an upscaling's recorded factors are the same value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mrisr.errors import ConfigError, InputError
from mrisr.io.geometry import rescaled_affine
from mrisr.io.volume import Volume


def spatial_ndim(vol: Volume) -> int:
    return len(vol.spatial_shape)


def volume_to_tensor(vol: Volume, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(T, 1, *spatial)`` tensor view of the voxels (``T = 1`` without a time axis)."""
    data = np.asarray(vol.data)
    if data.ndim == 4:
        data = np.moveaxis(data, 3, 0)
    else:
        data = data[None]
    return torch.from_numpy(np.ascontiguousarray(data)).to(dtype)[:, None]


def tensor_to_data(t: torch.Tensor, time_axis: bool) -> np.ndarray:
    """Inverse of :func:`volume_to_tensor`: float32 array ``(*spatial[, T])``."""
    arr = t.detach().cpu()[:, 0].to(torch.float32).numpy()
    return np.ascontiguousarray(np.moveaxis(arr, 0, -1) if time_axis else arr[0])


def normalise_axes(axes: Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """Spatial axes as non-negative ints; ``None`` means the in-plane axes ``(0, 1)``."""
    if axes is None:
        return (0, 1)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ConfigError(f"axis {a} is out of range for {ndim} spatial axes")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ConfigError(f"axes repeat: {list(axes)}")
    return tuple(sorted(out))


def axis_factors(ndim: int, axes: Sequence[int], scale: float) -> tuple[float, ...]:
    """Per-spatial-axis factors: ``scale`` on ``axes``, 1 elsewhere."""
    return tuple(float(scale) if a in axes else 1.0 for a in range(ndim))


def _affine_factors(factors: Sequence[float]) -> list[float]:
    return [float(f) for f in factors] + [1.0] * (3 - len(factors))


def _resample_headers(meta: dict[str, Any], n_old: int, n_new: int) -> None:
    """Keep one DICOM header per new slice (nearest old slice) so a DICOM writer still finds them."""
    headers = meta.get("dicom_headers")
    if not headers or n_old == n_new or len(headers) != n_old:
        return
    idx = np.minimum(np.floor((np.arange(n_new) + 0.5) * n_old / n_new).astype(int), n_old - 1)
    meta["dicom_headers"] = [headers[i] for i in idx]


def resampled_volume(vol: Volume, data: np.ndarray, factors: Sequence[float],
                     records: dict[str, Any] | Sequence[dict[str, Any]]) -> Volume:
    """New Volume holding ``data`` on ``vol``'s grid resampled by ``factors`` (same field of view).

    ``factors`` is the one value the new geometry comes from: the affine is
    :func:`~mrisr.io.geometry.rescaled_affine` of it, ``data``'s shape is checked against it, and an
    upscaling's history record takes its ``"factors"`` from it.

    Args:
        vol: the volume before resampling.
        data: the new voxels, ``(*spatial[, T])`` with ``spatial[a] = vol.spatial_shape[a] * factors[a]``
            and the time axis (if any) unchanged.
        factors: new voxels per old voxel along each spatial axis: 2 is twice as fine (upscaling), 0.5
            twice as coarse (a degradation), 1 unchanged.
        records: history entries appended to a copy of ``meta["history"]``; each ``{"op": "upscale"}``
            entry gets ``"factors"`` (integers where integral) from ``factors``.

    Raises:
        ValueError: ``data``'s shape does not match ``vol``'s times ``factors`` (a bug in the caller: the
            affine would not describe the voxels).
    """
    nd = spatial_ndim(vol)
    f = [float(v) for v in factors]
    if len(f) != nd or any(v <= 0 for v in f):
        raise ValueError(f"need {nd} positive factors for a volume of shape {vol.shape}, got {list(factors)}")
    want = tuple(n * v for n, v in zip(vol.spatial_shape, f, strict=True))
    if (data.ndim != vol.ndim or tuple(data.shape[nd:]) != tuple(vol.shape[nd:])
            or any(abs(m - w) > 1e-6 * max(1.0, w) for m, w in zip(data.shape[:nd], want, strict=True))):
        raise ValueError(f"resampled data of shape {tuple(data.shape)} does not match shape {vol.shape} "
                         f"resampled by factors {f} (expected spatial shape {tuple(round(w, 3) for w in want)})")
    affine = rescaled_affine(vol.affine, _affine_factors(f))
    recorded = [int(v) if float(v).is_integer() else v for v in f]
    new = [dict(r) for r in ([records] if isinstance(records, dict) else records)]
    for r in new:
        if r.get("op") == "upscale":
            r["factors"] = list(recorded)
    meta = dict(vol.meta)
    meta["history"] = [*list(vol.meta.get("history", [])), *new]
    if nd == 3:
        _resample_headers(meta, vol.spatial_shape[2], data.shape[2])
    return Volume(data.astype(np.float32, copy=False), affine, meta)


def crop_to_multiple(vol: Volume, factors: Sequence[float]) -> Volume:
    """Centre-crop each spatial axis to a multiple of its (integer) factor; affine moved accordingly.

    A size ``n`` with ``n % f = r`` loses ``r // 2`` voxels at the start and ``r - r // 2`` at the end. Records
    ``{"op": "crop", "start": [...], "shape": [...]}`` in the history when anything was cropped.

    Raises:
        InputError: an axis has fewer voxels than its factor (nothing would be left).
    """
    nd = spatial_ndim(vol)
    if len(factors) != nd:
        raise ConfigError(f"need {nd} factors, got {list(factors)}")
    small = [a for a, (n, f) in enumerate(zip(vol.spatial_shape, factors, strict=True)) if n < round(f)]
    if small:
        raise InputError(
            f"shape {tuple(vol.spatial_shape)} is too small for factors {tuple(round(f) for f in factors)}: axis "
            f"{', '.join(map(str, small))} has fewer voxels than its factor (choose other --axes or a smaller --scale)"
        )
    start, stop = [], []
    for n, f in zip(vol.spatial_shape, factors, strict=True):
        f = round(f)
        r = n % f
        start.append(r // 2)
        stop.append(n - (r - r // 2))
    if all(s == 0 for s in start) and list(stop) == list(vol.spatial_shape):
        return vol
    sl = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
    affine = vol.affine.copy()
    offset = np.asarray(start + [0] * (3 - nd), dtype=np.float64)
    affine[:3, 3] = affine[:3, :3] @ offset + affine[:3, 3]
    meta = dict(vol.meta)
    shape = [b - a for a, b in zip(start, stop, strict=True)]
    meta["history"] = [*list(vol.meta.get("history", [])), {"op": "crop", "start": start, "shape": shape}]
    if nd == 3 and meta.get("dicom_headers") and len(meta["dicom_headers"]) == vol.spatial_shape[2]:
        meta["dicom_headers"] = meta["dicom_headers"][start[2] : stop[2]]
    return Volume(np.ascontiguousarray(vol.data[sl]), affine, meta)
