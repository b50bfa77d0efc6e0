"""A 2D self-supervised network applied along the through-plane axis of a thick-slice scan (SMORE's inference).

The network (:mod:`mrisr.selfsr`) was trained on in-plane slices whose axis ``H`` (tensor dim -2) was degraded
as the slices were acquired and cubic-interpolated back: it maps cubic interpolation of thick slices to the
fine truth, same size in and out. Here every slice that contains the through-plane axis ``z`` is such an
image with ``H = z``, in two orientations: the slices across in-plane axis ``a`` (axes ``(z, b)``) and those
across ``b`` (axes ``(z, a)``). For the slices across ``a`` the network saw ``H`` at spacing ``d_a`` in
training, so ``z`` is first cubic-interpolated onto a working grid of spacing ``d_a``
(:func:`mrisr.degrade.resample.resample_axis`, field of view kept), the network runs, and the result is
cubic-resampled onto the target grid when ``d_a`` is not the target spacing. The two orientations are
averaged (fused).

Memory stays bounded: one output array plus a slab of ``slab`` slices at a time (never the whole working
grid of an orientation); the network sees ``batch_size`` slices per forward pass.

Target grid along ``z``: the same field of view as the scan's ``n`` slices of spacing ``S`` (edges at slice
index ``-0.5`` and ``n - 0.5``) divided into ``n_out = round(n * S / t)`` voxels, so the output spacing is
``n * S / n_out`` (the target ``t`` up to less than half a voxel over the whole field of view); the affine is
:func:`mrisr.degrade.grid.resampled_volume`'s for factor ``n_out / n``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from mrisr.data.normalise import fit_intensity_map
from mrisr.degrade.grid import resampled_volume
from mrisr.degrade.resample import resample_axis
from mrisr.errors import ConfigError, InputError
from mrisr.infer.engine import device_of, run_slices
from mrisr.io.limits import check_voxel_count
from mrisr.io.memory import check_memory, volume_job_bytes
from mrisr.io.volume import Volume

log = logging.getLogger(__name__)

#: Model-file metadata key that marks a self-supervised through-plane network and records its acquisition.
SELF_SUPERVISED_KEY = "self_supervised"
#: ``metadata[SELF_SUPERVISED_KEY]["geometry"]`` of such a model.
GEOMETRY = "through_plane_2d"


def is_self_supervised(meta: Mapping[str, Any]) -> bool:
    """True for the metadata of a model written by :mod:`mrisr.selfsr` (``mrisr selfsr --save-model`` or
    ``mrisr train --self-supervised``)."""
    entry = meta.get(SELF_SUPERVISED_KEY)
    return isinstance(entry, Mapping) and entry.get("geometry") == GEOMETRY


def output_slices(n: int, spacing: float, target: float) -> int:
    """Voxels of the target grid over the field of view of ``n`` slices ``spacing`` mm apart (at least 1)."""
    if not target > 0:
        raise ConfigError(f"target spacing must be positive, got {target:g} mm")
    return max(1, round(n * spacing / target))


def default_target(spacing: tuple[float, ...], axis: int) -> float:
    """The finest in-plane spacing (mm): an isotropic output where the in-plane voxels are square."""
    return min(float(s) for a, s in enumerate(spacing) if a != axis)


def nonconstant_slices(block: np.ndarray) -> np.ndarray:
    """``(s,)`` bool: which slices of ``block`` (``(s, ...)``) hold more than one value."""
    flat = block.reshape(block.shape[0], -1)
    return np.asarray(flat.max(axis=1) > flat.min(axis=1))


def through_plane_array(data: np.ndarray, module: nn.Module, axis: int, spacing: tuple[float, ...], n_out: int,
                        device: torch.device, *, batch_size: int = 4, slab: int = 16, progress: Any = None) -> np.ndarray:
    """Super-resolve a normalised 3D array along ``axis`` onto ``n_out`` voxels (same field of view).

    Args:
        data: ``(X, Y, Z)`` float32, in the network's intensity range.
        module: 2D network, ``(N, 1, H, W) -> (N, 1, H, W)``, trained with ``H`` the degraded axis.
        axis: the through-plane axis of ``data``.
        spacing: voxel sizes (mm) of the three axes.
        n_out: voxels of the output along ``axis``.
        device: where the network runs.
        batch_size: slices per forward pass.
        slab: slices taken from the volume at a time (memory: ``slab`` working-grid slices).
        progress: a tqdm-like bar updated by the number of slices done (``X + Y + Z - n_z`` in all).

    Returns:
        ``data``'s shape with ``n_out`` voxels along ``axis``, float32: the mean of the two orientations. A slice
        holding one value (empty background) is not run through the network: its cubic interpolation is that
        value, which it keeps.
    """
    if data.ndim != 3:
        raise ValueError(f"expected a 3D array, got shape {data.shape}")
    if batch_size < 1 or slab < 1:
        raise ConfigError("batch_size and slab must be >= 1")
    vol = np.moveaxis(np.asarray(data, dtype=np.float32), axis, -1)  # (A, B, Z), a view
    in_plane = [a for a in range(3) if a != axis]
    n_z = vol.shape[2]
    out = np.zeros((vol.shape[0], vol.shape[1], n_out), dtype=np.float32)
    for across in (0, 1):  # slices across in-plane axis `across`; H = z, W = the other in-plane axis
        d_work = float(spacing[in_plane[across]])
        n_work = output_slices(n_z, float(spacing[axis]), d_work)
        n_across = vol.shape[across]
        for start in range(0, n_across, slab):
            stop = min(start + slab, n_across)
            block = vol[start:stop] if across == 0 else np.moveaxis(vol[:, start:stop], 1, 0)  # (s, W, Z)
            t = torch.from_numpy(np.ascontiguousarray(block))
            t = resample_axis(t, 2, n_work, "cubic")
            stack = t.transpose(1, 2).contiguous().numpy()  # (s, Z_work, W): H = z
            busy = np.flatnonzero(nonconstant_slices(block))
            if busy.size < stack.shape[0]:  # a constant slice (background) is its own answer: skip the network
                if progress is not None:
                    progress.update(stack.shape[0] - busy.size)
                if busy.size:
                    stack[busy] = run_slices(module, stack[busy], batch_size, device, progress)
                sr = torch.from_numpy(stack).transpose(1, 2)
            else:
                sr = torch.from_numpy(run_slices(module, stack, batch_size, device, progress)).transpose(1, 2)
            if n_work != n_out:
                sr = resample_axis(sr.contiguous(), 2, n_out, "cubic")
            res = 0.5 * sr.numpy()
            if across == 0:
                out[start:stop] += res
            else:
                out[:, start:stop] += np.moveaxis(res, 0, 1)
    return np.moveaxis(out, -1, axis)


def upscale_through_plane(volume: Volume, model: tuple[nn.Module, Mapping[str, Any]], *,
                          target_spacing: float | None = None, axis: int | None = None,
                          device: str | torch.device = "cpu", batch_size: int = 4, slab: int = 16,
                          progress: bool = False, record: Mapping[str, Any] | None = None) -> Volume:
    """Super-resolve ``volume`` through-plane with a self-supervised network and its metadata.

    Args:
        volume: 3D thick-slice scan, any intensity units.
        model: ``(network, metadata)``; the metadata's ``normalisation`` maps intensities to the network's range.
        target_spacing: output spacing along the through-plane axis in mm (default: the finest in-plane).
        axis: through-plane axis (default: the coarsest axis of ``volume``).
        device: torch device of the network.
        batch_size, slab: see :func:`through_plane_array`.
        progress: show a progress bar.
        record: extra fields for the history record.

    Returns:
        A Volume on the target grid (same field of view, affine of :func:`resampled_volume`), input units;
        negative voxels are set to 0 when the input has none (a magnitude image stays one).
    """
    module, meta = model
    if volume.ndim != 3:
        raise InputError(f"through-plane super-resolution needs a 3D scan, got shape {volume.shape}")
    volume.check_finite()
    sp = tuple(float(s) for s in volume.spacing[:3])
    if axis is None:
        axis = int(np.argmax(sp))
    if not -3 <= axis < 3:
        raise ConfigError(f"axis {axis} is out of range for 3 spatial axes")
    axis %= 3
    target = default_target(sp, axis) if target_spacing is None else float(target_spacing)
    n = volume.spatial_shape[axis]
    n_out = output_slices(n, sp[axis], target)
    out_shape = tuple(n_out if a == axis else s for a, s in enumerate(volume.spatial_shape))
    check_voxel_count(out_shape, "the super-resolved output")
    slice_px = max(volume.spatial_shape[a] for a in range(3) if a != axis) * max(
        n_out, output_slices(n, sp[axis], default_target(sp, axis)))
    width = max((int(getattr(m, "out_channels", 0)) for m in module.modules()), default=0) or 64
    check_memory(volume_job_bytes(out_shape, volume.shape) + 4 * batch_size * slice_px * width * 4,
                 f"super-resolving {volume.shape} to {out_shape}")
    entry = meta.get(SELF_SUPERVISED_KEY) or {}
    trained = entry.get("ratio") if isinstance(entry, Mapping) else None
    if isinstance(trained, int | float) and trained > 0:
        ratio = sp[axis] / default_target(sp, axis)
        if abs(ratio / trained - 1.0) > 0.1:
            log.warning("mrisr: warning: the model learnt slices %.3g fine voxels apart, this scan's are %.3g apart "
                        "(results may be poorer; `mrisr selfsr` learns from the scan itself)", trained, ratio)
    dev = device_of(device)
    module = module.to(dev).eval()
    imap = fit_intensity_map(volume.data, meta.get("normalisation"))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(volume.spatial_shape[a] for a in range(3) if a != axis), unit="slice", desc="apply")
    try:
        out = through_plane_array(imap.forward(volume.data), module, axis, sp, n_out, dev, batch_size=batch_size,
                                  slab=slab, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if not np.all(np.isfinite(out)):
        raise InputError("the network produced NaN or Inf (a broken or diverged model)")
    out = imap.inverse(out)
    rec: dict[str, Any] = {"op": "upscale", "method": "self-supervised through-plane", "axis": axis,
                           "target_spacing_mm": target, "arch": meta.get("arch"), "device": str(dev)}
    if volume.data.size and float(np.min(volume.data)) >= 0:
        negative = out < 0
        rec["negative_voxels_set_to_zero"] = int(negative.sum())
        out[negative] = 0.0
    rec.update(dict(record or {}))
    factors = [n_out / n if a == axis else 1.0 for a in range(3)]
    return resampled_volume(volume, out, factors, rec)


def self_supervised_model(model: Any, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]] | None:
    """``(network, metadata)`` when ``model`` (a model reference or a loaded pair) is a self-supervised
    through-plane model, else ``None`` (only the header of a model file is read then)."""
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[1], Mapping):
        return (model[0], dict(model[1])) if is_self_supervised(model[1]) else None
    if isinstance(model, nn.Module):
        return None
    from mrisr.models.modelfile import load_model_file, read_model_metadata

    if not is_self_supervised(read_model_metadata(model)):
        return None
    return load_model_file(model, device=device_of(device))


def upscale_self_supervised(volume: Volume, model: Any, scale: int | None, device: str | torch.device,
                            progress: bool, options: Mapping[str, Any]) -> Volume | None:
    """:func:`mrisr.infer.upscale_with_model`'s branch for self-supervised through-plane model files: the
    upscaled Volume, or ``None`` when ``model`` is another kind of model.

    ``options`` may hold ``axis`` (the through-plane axis; default the coarsest) and ``batch_size`` (``patch_size``,
    ``overlap`` and ``calibrate`` are accepted and unused); the output spacing is the finest in-plane spacing.

    Raises:
        ConfigError: ``scale`` given (the factor is the scan's spacing ratio, rarely an integer), other options.
    """
    found = self_supervised_model(model, device)
    if found is None:
        return None
    if scale is not None:
        raise ConfigError("a self-supervised through-plane model refines the slice axis to the in-plane spacing; "
                          "--scale does not apply")
    # 3D tiling and the residual calibration of in-plane models have no meaning here; anything else is an error
    unknown = sorted(set(options) - {"axis", "batch_size", "patch_size", "overlap", "calibrate"})
    if unknown:
        raise ConfigError(f"option(s) {', '.join(unknown)} do not apply to a self-supervised through-plane model")
    return upscale_through_plane(volume, found, axis=options.get("axis"), device=device,
                                 batch_size=int(options.get("batch_size", 4)), progress=progress,
                                 record={"model": str(found[1].get("path", "model"))})
