"""Apply a trained network to a whole scan: ``upscale_with_model(volume, model) -> Volume``.

* 2D networks run slice by slice: the slices are taken normal to ``axis`` (default 2, the slice axis of
  DICOM series and most NIfTI files) in every time frame, batched, and with ``context_slices``
  neighbours as extra input channels (edge slices repeated at the ends). The grid becomes finer in-plane
  only.
* 3D networks run on overlapping patches (``patch_size`` coarse voxels, ``overlap`` voxels shared between
  neighbours, only the central part of each patch kept). A network states its ``geometry``
  (:mod:`mrisr.models.base`): isotropic networks refine all three axes, through-plane networks only
  ``axis`` (moved to their last tensor dim).

The intensity normalisation stored in the model file is fitted on the volume (all frames together),
applied before the network and inverted afterwards, so the output is in the input's units; what a
clipping normalisation cut off (the brightest / darkest voxels) is added back, linearly interpolated. The
per-axis factors (:func:`scan_factors`) are computed once: they give the output shape, and
:func:`mrisr.degrade.grid.resampled_volume` derives the affine (same field of view) and the ``factors`` of
the ``{"op": "upscale", "method": "model", ...}`` entry appended to ``meta["history"]`` from them.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mrisr.data.normalise import DEFAULT_NORMALISATION, IntensityMap, fit_intensity_map
from mrisr.errors import ConfigError, InputError
from mrisr.infer.engine import run_slices
from mrisr.infer.tiling import patch_starts, run_patches
from mrisr.io.limits import check_voxel_count
from mrisr.io.memory import check_memory
from mrisr.io.volume import Volume
from mrisr.models.intended import intended_use, use_warnings
from mrisr.models.modelfile import legacy_geometry, load_model_file, resolve_model_path

log = logging.getLogger(__name__)

ModelRef = str | os.PathLike[str] | nn.Module | tuple[nn.Module, Mapping[str, Any]]

_CACHE: dict[tuple[str, float, str], tuple[nn.Module, dict[str, Any]]] = {}
_CACHE_SIZE = 4


# ----------------------------------------------------------------------------------------- do no harm
def keep_measured_band(out: np.ndarray, measured: np.ndarray, factors: list[int], chunk: int = 16) -> None:
    """Make the output's central k-space band equal the measured scan's, in place and in input units.

    ``out`` is the network's output on the fine grid (spatial shape ``measured``'s times ``factors``, then
    any trailing frame axis); ``measured`` the input scan. After this, truncating ``out``'s spectrum to the
    measured band (:func:`mrisr.degrade.kspace.kspace_truncate`, no window, real part) gives ``measured``
    back to float32 rounding: the network only fills in the frequencies that were not measured. Done here,
    after the intensity normalisation is inverted (a clipping normalisation is not linear), in chunks of
    ``chunk`` positions along an axis that is not refined, so memory stays a few slices' worth.
    """
    from mrisr.degrade.kspace import data_consistency

    dims = [d for d, f in enumerate(factors) if f > 1]
    if not dims:
        return
    sel = [factors[d] for d in dims]
    free = [d for d in range(out.ndim) if d not in dims]
    along = max(free, key=lambda d: out.shape[d]) if free else None
    n = out.shape[along] if along is not None else 1
    for start in range(0, n, chunk):
        idx: list[Any] = [slice(None)] * out.ndim
        if along is not None:
            idx[along] = slice(start, min(start + chunk, n))
        sr = torch.from_numpy(np.ascontiguousarray(out[tuple(idx)])).double()
        lr = torch.from_numpy(np.ascontiguousarray(measured[tuple(idx)])).double()
        out[tuple(idx)] = data_consistency(sr, lr, sel, dims).numpy()


def nonnegative_output(out: np.ndarray, measured: np.ndarray) -> int | None:
    """Magnitude in, magnitude out, for models whose file says they make magnitude images
    (``intended_use.image == "magnitude"``): where the input scan has no negative voxel (an MR magnitude
    image), negative output voxels (ringing of the sinc band limit, network overshoot) are set to 0 in place.

    Returns the number of voxels changed, or ``None`` when the input has negative values (phase, CT, a
    zero-mean image) and the output is left alone.
    """
    if measured.size == 0 or float(np.min(measured)) < 0:
        return None
    neg = out < 0
    count = int(neg.sum())
    out[neg] = 0.0
    return count


# ------------------------------------------------------------------------------------------- normalisation
def clip_excess(data: np.ndarray, imap: IntensityMap) -> np.ndarray | None:
    """What clipping to the normalisation window removes from ``data`` (input units), or None if nothing.

    A network fed clipped intensities cannot give back what lies beyond the window (the brightest 0.5%
    of a scan with the default percentile normalisation: vessels, fat, lesions). mrisr adds that part back,
    interpolated, so that the output keeps the input's intensity range.
    """
    excess = np.asarray(data, dtype=np.float32) - np.clip(data, imap.low, imap.high).astype(np.float32)
    return excess if np.any(excess) else None


def upscale_excess(excess: np.ndarray, factors: list[int]) -> np.ndarray:
    """Linear interpolation of ``excess`` (``(*spatial[, T])``) onto the output grid (same field of view)."""
    from mrisr.degrade.baselines import upscale_tensor

    nd = len(factors)
    arr = np.moveaxis(excess, -1, 0) if excess.ndim > nd else excess[None]
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[:, None]
    up = upscale_tensor(t, factors, "linear")[:, 0].numpy()
    return np.ascontiguousarray(np.moveaxis(up, 0, -1) if excess.ndim > nd else up[0])


# ------------------------------------------------------------------------------------------- loading
def _resolve(model: ModelRef, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    if isinstance(model, tuple):
        module, meta = model
        return module.to(device).eval(), dict(meta)
    if isinstance(model, nn.Module):
        return model.to(device).eval(), {"normalisation": dict(DEFAULT_NORMALISATION)}
    path = resolve_model_path(model)
    key = (str(path.resolve()), path.stat().st_mtime, str(device))
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = load_model_file(path, device=device)
    return _CACHE[key]


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available (use --device cpu)")
    return dev


# ------------------------------------------------------------------------------------------- 2D slice-wise
def _slice_stacks(data: np.ndarray, axis: int) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """``(frame index, stack (S, a, b))`` for every frame; 2D data is one stack of one slice."""
    if data.ndim == 2:
        yield (), data[None]
        return
    frames = [((), data)] if data.ndim == 3 else [((t,), data[..., t]) for t in range(data.shape[3])]
    for idx, vol in frames:
        yield idx, np.moveaxis(vol, axis, 0)


# ------------------------------------------------------------------------------------------- entry point
def _geometry(module: nn.Module) -> str:
    """The network's ``geometry`` (:mod:`mrisr.models.base`); a module from elsewhere that lacks one is
    read as model files written before mrisr recorded it are (:func:`~mrisr.models.modelfile.legacy_geometry`)."""
    geometry = getattr(module, "geometry", None)
    if geometry is None:
        geometry = legacy_geometry([int(f) for f in getattr(module, "factors")])  # noqa: B009
    return str(geometry)


def scan_factors(module: nn.Module, nd: int, axis: int) -> list[int]:
    """Upscaling factor per spatial axis of a scan with ``nd`` (2 or 3) spatial axes.

    A 2D network refines the two axes of each slice (those other than ``axis`` in 3D); a 3D network all
    three axes (``geometry="isotropic"``) or only ``axis`` (``"through_plane"``, its last tensor dim).

    Raises:
        ConfigError: an unknown geometry.
    """
    f = [int(v) for v in getattr(module, "factors")]  # noqa: B009
    if getattr(module, "spatial_dims", len(f)) == 2:
        factors = [1] * nd
        in_plane = [a for a in range(nd) if a != axis] if nd == 3 else [0, 1]
        factors[in_plane[0]], factors[in_plane[1]] = f
        return factors
    geometry = _geometry(module)
    if geometry == "isotropic":
        return f
    if geometry != "through_plane":
        raise ConfigError(f"unknown network geometry {geometry!r}; known: isotropic, through_plane")
    factors = [1, 1, 1]
    factors[axis] = f[2]
    return factors


#: Feature maps alive at once in a forward pass, counted in the network's widest layer.
LIVE_FEATURE_MAPS = 4


def inference_memory_bytes(module: nn.Module, spatial_shape: tuple[int, ...], in_shape: tuple[int, ...],
                           out_shape: tuple[int, ...], axis: int, batch_size: int, patch_size: int) -> int:
    """Estimated peak bytes of :func:`upscale_with_model`: the whole-volume arrays
    (:func:`mrisr.io.memory.volume_job_bytes`) plus one batch's feature maps: ``batch_size`` slices (2D; the
    coarse in-plane grid) or patches (3D; the fine grid for networks that upsample first) times the widest
    layer's channels times :data:`LIVE_FEATURE_MAPS`, float32."""
    from mrisr.io.memory import volume_job_bytes

    width = max((int(getattr(m, "out_channels", 0)) for m in module.modules()), default=0) or 64
    if getattr(module, "spatial_dims", 2) == 2:
        plane = [n for d, n in enumerate(spatial_shape) if d != axis] if len(spatial_shape) == 3 else spatial_shape
        per_sample = math.prod(plane)
    else:
        per_sample = math.prod(min(patch_size, n) for n in spatial_shape)
        if getattr(module, "upsampling", None) == "pre":
            per_sample *= math.prod(int(f) for f in getattr(module, "factors"))  # noqa: B009
    batch = 4 * batch_size * per_sample * width * LIVE_FEATURE_MAPS
    return volume_job_bytes(out_shape, in_shape) + batch


def upscale_with_model(
    volume: Volume,
    model: ModelRef,
    scale: int | None = None,
    device: str | torch.device = "cpu",
    *,
    axis: int = 2,
    batch_size: int = 8,
    patch_size: int = 64,
    overlap: int = 8,
    progress: bool = False,
    **opts: Any,
) -> Volume:
    """Super-resolve ``volume`` with a trained network.

    Args:
        volume: 2D, 3D or 4D (time last) scan in any intensity units.
        model: a model file path, a folder holding one, a shipped model name, a loaded ``(module, meta)``
            pair, or a bare generator module (default normalisation assumed).
        scale: expected upscaling factor; an error if the model's differs (``None``: the model's).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``.
        axis: spatial axis normal to the slices for 2D networks, and the through-plane axis refined by
            anisotropic 3D networks (0, 1 or 2; default 2).
        batch_size: slices (2D) or patches (3D) per forward pass.
        patch_size: 3D patch edge in coarse voxels.
        overlap: coarse voxels shared by neighbouring 3D patches (half of it is discarded on each side).
        progress: show a progress bar.

    Returns:
        The super-resolved Volume (float32, input units) on the finer grid, same field of view.
    """
    if opts:
        raise ConfigError(f"unknown inference option(s): {', '.join(sorted(opts))}")
    if batch_size < 1 or patch_size < 1 or overlap < 0:
        raise ConfigError("batch_size and patch_size must be >= 1 and overlap >= 0")
    dev = _device(device)
    module: Any
    module, meta = _resolve(model, dev)
    name = meta.get("path", type(module).__name__) if not isinstance(model, str | os.PathLike) else str(model)
    if not hasattr(module, "factors") or getattr(module, "kind", "generator") != "generator":
        raise ConfigError(f"{name} is not a super-resolution generator")
    model_scale = int(module.scale)
    if scale is not None and int(scale) != model_scale:
        raise ConfigError(f"{Path(str(name)).name} upscales by {model_scale}, but scale {scale} was requested")
    volume.check_finite()
    nd = len(volume.spatial_shape)
    if nd == 3:
        if not -3 <= axis < 3:
            raise ConfigError(f"axis {axis} is out of range for a volume with 3 spatial axes")
        axis %= 3
    imap = fit_intensity_map(volume.data, meta.get("normalisation"))
    data = imap.forward(volume.data)
    if module.spatial_dims == 3 and nd != 3:
        raise InputError(f"a 3D network needs a 3D or 4D volume, got shape {volume.shape}")
    factors = scan_factors(module, nd, axis)
    output_mm = [float(volume.spacing[d]) / f for d, f in enumerate(factors) if f > 1]
    for line in use_warnings(meta, volume.meta.get("modality"), output_mm, Path(str(name)).name):
        log.warning("mrisr: warning: %s", line)
    out_shape = tuple(n * f for n, f in zip(volume.spatial_shape, factors, strict=True)) + volume.shape[nd:]
    check_voxel_count(out_shape, "the upscaled output")
    check_memory(inference_memory_bytes(module, volume.spatial_shape, volume.shape, out_shape, axis, batch_size,
                                        patch_size), f"upscaling {volume.shape} to {out_shape}")
    bar = None
    if module.spatial_dims == 2:
        stacks = list(_slice_stacks(data, axis))
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=sum(s.shape[0] for _, s in stacks), unit="slice", desc="upscale")
        out = np.empty(out_shape, dtype=np.float32)
        for idx, stack in stacks:
            sr = run_slices(module, stack, batch_size, dev, bar)
            if nd == 2:
                out[...] = sr[0]
            elif idx:
                out[..., idx[0]] = np.moveaxis(sr, 0, axis)
            else:
                out[...] = np.moveaxis(sr, 0, axis)
    else:
        frames = [volume.data.shape[3]] if volume.ndim == 4 else []
        if progress:
            from tqdm import tqdm

            per = math.prod(len(patch_starts(n, min(patch_size, n), max(1, min(patch_size, n) - overlap)))
                            for n in volume.spatial_shape)
            bar = tqdm(total=per * (frames[0] if frames else 1), unit="patch", desc="upscale")
        out = np.empty(out_shape, dtype=np.float32)
        for t in range(frames[0] if frames else 1):
            vol3 = data[..., t] if frames else data
            sr = run_patches(module, np.moveaxis(vol3, axis, -1), patch_size, overlap, batch_size, dev, bar)
            sr = np.moveaxis(sr, -1, axis)
            if frames:
                out[..., t] = sr
            else:
                out[...] = sr
    if bar is not None:
        bar.close()
    if not np.all(np.isfinite(out)):
        bad = int((~np.isfinite(out)).sum())
        raise InputError(f"{Path(str(name)).name} produced NaN or Inf for {bad} of {out.size} voxels "
                         "(a broken or diverged model)")
    out = imap.inverse(out)
    record = {"op": "upscale", "method": "model", "model": str(name),
              "arch": meta.get("arch", type(module).__name__), "geometry": _geometry(module), "device": str(dev)}
    if imap.clip and not imap.identity:
        excess = clip_excess(volume.data, imap)
        if excess is not None:
            out += upscale_excess(excess, factors)
            record["clipped_intensities"] = "restored by linear interpolation"
    if module.spatial_dims == 2 and nd == 3:
        record["axis"] = axis
    if getattr(module, "data_consistency", False):
        keep_measured_band(out, volume.data, factors)
        record["data_consistency"] = "measured k-space band returned as measured (input units)"
    negative = nonnegative_output(out, volume.data) if intended_use(meta).get("image") == "magnitude" else None
    if negative is not None:
        record["negative_voxels_set_to_zero"] = negative
    from mrisr.degrade.grid import resampled_volume

    return resampled_volume(volume, out, factors, record)
