"""Apply a trained network to a whole scan: ``upscale_with_model(volume, model) -> Volume``.

* 2D networks run slice by slice: the slices are taken normal to ``axis`` (default 2, the slice axis of
  DICOM series and most NIfTI files) in every time frame, batched, and with ``context_slices``
  neighbours as extra input channels (edge slices repeated at the ends). The grid becomes finer in-plane
  only.
* 3D networks run on overlapping patches (``patch_size`` coarse voxels, ``overlap`` voxels shared between
  neighbours, blended with a smooth window: :mod:`mrisr.infer.tiling`). A network states its ``geometry``
  (:mod:`mrisr.models.base`): isotropic networks refine all three axes, through-plane networks only
  ``axis`` (moved to their last tensor dim).

The intensity normalisation stored in the model file is fitted on the volume (all frames together),
applied before the network and inverted afterwards, so the output is in the input's units; what a
clipping normalisation cut off (the brightest / darkest voxels) is added back, linearly interpolated. The
per-axis factors (:func:`scan_factors`) are computed once: they give the output shape, and
:func:`mrisr.degrade.grid.resampled_volume` derives the affine (same field of view) and the ``factors`` of
the ``{"op": "upscale", "method": "model", ...}`` entry appended to ``meta["history"]`` from them.

Memory stays bounded whatever the slice count: the output streams in slabs (:meth:`ModelRun.slabs`) of a
few slices (2D networks; a 3D network one time frame), each post-processed on its own (every step acts per
voxel or along the refined axes only), so a writer (:func:`mrisr.io.stream.write_slabs`) stores it and
drops it; :func:`upscale_with_model` puts the same slabs into one array.
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
from mrisr.infer.engine import device_of, resolve_engine, run_slices
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
    return _zero_negatives(out)


def _zero_negatives(out: np.ndarray) -> int:
    """Set the negative voxels of ``out`` to 0 in place; returns how many there were."""
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
#: Output bytes (float32) per slab of slices that streams through a 2D network and its post-processing.
SLAB_BYTES = 64 * 2**20
#: Peak bytes of one forward pass a 2D network may take (by the estimate of :func:`sample_bytes`): fewer
#: slices per batch than ``batch_size`` when ``batch_size`` of them would need more.
FORWARD_BYTES = 5 * 2**28
#: Peak bytes per output byte of a slab's post-processing (the network's output, its inverse normalisation,
#: the restored clipped intensities, data consistency's float64 / complex128 chunks).
SLAB_WORK_FACTOR = 8
#: Whole-volume float32 arrays a model job holds besides the output: the input, its normalised copy, and the
#: 3D networks' patch accumulators (of the output frame: sum and weights) with its post-processing.
INPUT_COPIES = 2
FRAME_WORK_FACTOR = 8


def sample_bytes(module: nn.Module, spatial_shape: tuple[int, ...], axis: int, patch_size: int) -> int:
    """Estimated bytes of one sample's feature maps in a forward pass: a slice (2D; the coarse in-plane grid)
    or a patch (3D; the fine grid for networks that upsample first) times the widest layer's channels times
    :data:`LIVE_FEATURE_MAPS`, float32."""
    width = max((int(getattr(m, "out_channels", 0)) for m in module.modules()), default=0) or 64
    if getattr(module, "spatial_dims", 2) == 2:
        plane = [n for d, n in enumerate(spatial_shape) if d != axis] if len(spatial_shape) == 3 else spatial_shape
        per_sample = math.prod(plane)
    else:
        per_sample = math.prod(min(patch_size, n) for n in spatial_shape)
        if getattr(module, "upsampling", None) == "pre":
            per_sample *= math.prod(int(f) for f in getattr(module, "factors"))  # noqa: B009
    return 4 * per_sample * width * LIVE_FEATURE_MAPS


def slab_slices(out_slice_voxels: int) -> int:
    """Slices per streamed slab: as many as keep the slab's float32 output under :data:`SLAB_BYTES` (at least 1)."""
    return max(1, SLAB_BYTES // max(1, 4 * out_slice_voxels))


def inference_memory_bytes(module: nn.Module, spatial_shape: tuple[int, ...], in_shape: tuple[int, ...],
                           out_shape: tuple[int, ...], axis: int, batch_size: int, patch_size: int,
                           *, in_memory: bool = True) -> int:
    """Estimated peak bytes of a model job: :data:`INPUT_COPIES` float32 copies of the input, the slab being
    post-processed (2D networks: :func:`slab_slices` output slices x :data:`SLAB_WORK_FACTOR`; 3D networks: one
    output frame x :data:`FRAME_WORK_FACTOR`), one batch of feature maps (``batch_size`` x
    :func:`sample_bytes`), and the whole float32 output when it is kept in memory (``in_memory``; a streamed
    job writes each slab to its file instead)."""
    nd = len(spatial_shape)
    out_spatial = math.prod(out_shape[:nd])
    if getattr(module, "spatial_dims", 2) == 2:
        n = out_shape[axis] if nd == 3 else 1
        per_slice = out_spatial // n
        slab = 4 * SLAB_WORK_FACTOR * per_slice * min(n, slab_slices(per_slice))
    else:
        slab = 4 * FRAME_WORK_FACTOR * out_spatial
    batch = batch_size * sample_bytes(module, spatial_shape, axis, patch_size)
    whole = 4 * math.prod(out_shape) if in_memory else 0
    return 4 * INPUT_COPIES * math.prod(in_shape) + slab + batch + whole


#: One streamed piece of an output: the index of the output array ``(*spatial[, T])`` it fills, and its voxels.
Slab = tuple[tuple[Any, ...], np.ndarray]


class ModelRun:
    """A model job checked and ready: the output's shape and factors, its slabs, its Volume.

    Built by :func:`prepare_upscale`. :meth:`slabs` runs the network and yields the output slab by slab, each
    already in input units and post-processed (clipped intensities restored, the measured band put back, no
    negative magnitudes), so that a writer can store it and forget it; :meth:`result` wraps a whole output
    array as the Volume, :meth:`template` gives the same Volume over a placeholder (its geometry and history,
    complete once :meth:`slabs` has run).
    """

    def __init__(self, volume: Volume, module: Any, meta: dict[str, Any], dev: torch.device, name: str,
                 imap: IntensityMap, data: np.ndarray, factors: list[int], out_shape: tuple[int, ...], axis: int,
                 batch_size: int, patch_size: int, overlap: int, calibration: dict[str, Any] | None) -> None:
        self.volume, self.module, self.meta, self.device, self.name = volume, module, meta, dev, name
        self.imap, self.data, self.factors, self.out_shape, self.axis = imap, data, factors, out_shape, axis
        self.batch_size, self.patch_size, self.overlap, self.calibration = batch_size, patch_size, overlap, calibration
        self.nd = len(volume.spatial_shape)
        self.data_consistency = bool(getattr(module, "data_consistency", False))
        self.magnitude = (intended_use(meta).get("image") == "magnitude" and volume.data.size > 0
                          and float(np.min(volume.data)) >= 0)
        self.clipped = False
        self.negatives = 0
        #: what runs the network: "auto", "torch" or "onnx" (:func:`mrisr.infer.engine.resolve_engine`)
        self.engine = "auto"

    # -- the record and the Volume --------------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        """The ``{"op": "upscale", "method": "model", ...}`` history entry (what :meth:`slabs` did, so far)."""
        module = self.module
        record: dict[str, Any] = {"op": "upscale", "method": "model", "model": str(self.name),
                                  "arch": self.meta.get("arch", type(module).__name__), "geometry": _geometry(module),
                                  "device": str(self.device)}
        if self.clipped:
            record["clipped_intensities"] = "restored by linear interpolation"
        if module.spatial_dims == 2 and self.nd == 3:
            record["axis"] = self.axis
        if self.calibration is not None:
            record["residual_gain"] = self.calibration
        if self.data_consistency:
            record["data_consistency"] = "measured k-space band returned as measured (input units)"
        if self.magnitude:
            record["negative_voxels_set_to_zero"] = self.negatives
        return record

    def result(self, data: np.ndarray) -> Volume:
        """The output Volume holding ``data`` (``out_shape``): affine and history from
        :func:`mrisr.degrade.grid.resampled_volume` of the one set of factors."""
        from mrisr.degrade.grid import resampled_volume

        return resampled_volume(self.volume, data, self.factors, self.record())

    def template(self) -> Volume:
        """:meth:`result` over a read-only placeholder of the output's shape (no voxel memory): the geometry and
        metadata a streaming writer needs."""
        return self.result(np.broadcast_to(np.zeros((), dtype=np.float32), self.out_shape))

    # -- running -----------------------------------------------------------------------------------
    def _finish(self, sr: np.ndarray, measured: np.ndarray) -> np.ndarray:
        """Post-process one slab of network output ``sr`` (normalised, the fine grid of ``measured``, the input
        voxels it comes from), in this order: inverse normalisation, clipped intensities restored
        (:func:`clip_excess`, :func:`upscale_excess`), the measured band put back (data consistency models,
        :func:`keep_measured_band`), negatives set to 0 (magnitude models, :func:`nonnegative_output`). Each step
        acts per voxel or along the slab's refined axes only, so a slab gets what the whole volume would."""
        if not np.all(np.isfinite(sr)):
            bad = int((~np.isfinite(sr)).sum())
            raise InputError(f"{Path(str(self.name)).name} produced NaN or Inf for {bad} of the {sr.size} voxels "
                             "of a slab (a broken or diverged model)")
        out = self.imap.inverse(sr)
        if self.imap.clip and not self.imap.identity:
            excess = clip_excess(measured, self.imap)
            if excess is not None:
                out += upscale_excess(excess, self.factors)
                self.clipped = True
        if self.data_consistency:
            keep_measured_band(out, measured, self.factors, chunk=4)
        if self.magnitude:
            self.negatives += _zero_negatives(out)
        return out

    def _plan_2d(self) -> list[tuple[tuple[int, ...], int, int, int, int]]:
        """``(frame index, s0, s1, h0, h1)``: the slabs ``[s0, s1)`` of each frame's slices with their context
        halo ``[h0, h1)`` (``in_channels // 2`` neighbours each side, clamped at the ends of the stack)."""
        c = int(getattr(self.module, "in_channels", 1)) // 2
        n = self.volume.spatial_shape[self.axis] if self.nd == 3 else 1
        per_slice = math.prod(self.out_shape[:self.nd]) // (self.out_shape[self.axis] if self.nd == 3 else 1)
        step = slab_slices(per_slice)
        frames = [(t,) for t in range(self.volume.shape[3])] if self.volume.ndim == 4 else [()]
        return [(f, s0, min(n, s0 + step), max(0, s0 - c), min(n, s0 + step + c))
                for f in frames for s0 in range(0, n, step)]

    def slabs(self, progress: bool = False) -> Iterator[Slab]:
        """Run the network; yield ``(index into the output array, slab)`` in the output's file order (slices,
        then frames), each slab float32 in input units and post-processed (:meth:`_finish`).

        2D networks stream slabs of :func:`slab_slices` slices normal to ``axis`` (with their context halo);
        3D networks one frame at a time (their patches, and data consistency over all three refined axes,
        need the whole frame).
        """
        bar = None
        module, dev = self.module, self.device
        try:
            if module.spatial_dims == 2:
                plan = self._plan_2d()
                if progress:
                    from tqdm import tqdm

                    bar = tqdm(total=sum(h1 - h0 for _, _, _, h0, h1 in plan), unit="slice", desc="upscale")
                stacks = dict(_slice_stacks(self.data, self.axis))
                for frame, s0, s1, h0, h1 in plan:
                    sr = run_slices(module, stacks[frame][h0:h1], self.batch_size, dev, bar,
                                    engine=self.engine)[s0 - h0:s1 - h0]
                    if self.nd == 2:
                        yield (slice(None), slice(None)), self._finish(sr[0], self.volume.data)
                        continue
                    index: list[Any] = [slice(None)] * 3
                    index[self.axis] = slice(s0, s1)
                    where = (*index, *frame)
                    yield where, self._finish(np.moveaxis(sr, 0, self.axis), self.volume.data[where])
            else:
                frames = self.volume.shape[3] if self.volume.ndim == 4 else 0
                if progress:
                    from tqdm import tqdm

                    per = math.prod(len(patch_starts(n, min(self.patch_size, n),
                                                     max(1, min(self.patch_size, n) - self.overlap)))
                                    for n in self.volume.spatial_shape)
                    bar = tqdm(total=per * max(frames, 1), unit="patch", desc="upscale")
                for t in range(max(frames, 1)):
                    whole = (slice(None),) * 3 + ((t,) if frames else ())
                    vol3 = self.data[whole]
                    sr = run_patches(module, np.moveaxis(vol3, self.axis, -1), self.patch_size, self.overlap,
                                     self.batch_size, dev, bar, engine=self.engine)
                    yield whole, self._finish(np.moveaxis(sr, -1, self.axis), self.volume.data[whole])
        finally:
            if bar is not None:
                bar.close()


def prepare_upscale(
    volume: Volume,
    model: ModelRef,
    scale: int | None = None,
    device: str | torch.device = "cpu",
    *,
    axis: int = 2,
    batch_size: int = 8,
    patch_size: int = 64,
    overlap: int = 8,
    calibrate: bool = True,
    in_memory: bool = True,
    engine: str = "auto",
    **opts: Any,
) -> ModelRun:
    """Check a model job and get it ready (:class:`ModelRun`): load the model, fit the intensity
    normalisation on the whole volume, compute the factors and the output shape once, check the voxel count
    and the memory (:func:`inference_memory_bytes`), calibrate a residual network's gain.

    Args:
        volume: 2D, 3D or 4D (time last) scan in any intensity units.
        model: a model file path, a folder holding one, a shipped model name, a loaded ``(module, meta)``
            pair, or a bare generator module (default normalisation assumed).
        scale: expected upscaling factor; an error if the model's differs (``None``: the model's).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``.
        axis: spatial axis normal to the slices for 2D networks, and the through-plane axis refined by
            anisotropic 3D networks (0, 1 or 2; default 2).
        batch_size: slices (2D) or patches (3D) per forward pass; 2D networks take fewer when ``batch_size``
            slices would need more than :data:`FORWARD_BYTES` (:func:`sample_bytes`).
        patch_size: 3D patch edge in coarse voxels.
        overlap: coarse voxels shared by neighbouring 3D patches, over which they are blended
            (:mod:`mrisr.infer.tiling`).
        calibrate: scale a 2D residual network's correction by the gain it earns on this scan one
            degradation coarser (:mod:`mrisr.infer.calibrate`; recorded in the history).
        in_memory: the caller keeps the whole output in memory (counted in the memory check); a streaming
            writer does not.
        engine: what runs the network: ``"auto"``, ``"torch"`` or ``"onnx"`` (ONNX Runtime, the
            ``mrisr[onnx]`` extra; :func:`mrisr.infer.engine.resolve_engine`).

    Raises:
        ConfigError: unknown options, a bad model, a scale or axis that does not fit.
        InputError: NaN/Inf voxels, a 3D network on a 2D scan.
        MrisrError: the job needs more memory than is available.
    """
    if opts:
        raise ConfigError(f"unknown inference option(s): {', '.join(sorted(opts))}")
    if batch_size < 1 or patch_size < 1 or overlap < 0:
        raise ConfigError("batch_size and patch_size must be >= 1 and overlap >= 0")
    dev = device_of(device)
    resolve_engine(engine, dev)  # an unknown engine or a missing ONNX Runtime fails before any work
    module: Any
    module, meta = _resolve(model, dev)
    name = meta.get("path", type(module).__name__) if not isinstance(model, str | os.PathLike) else str(model)
    if not hasattr(module, "factors") or getattr(module, "kind", "generator") != "generator":
        raise ConfigError(f"{name} is not a super-resolution generator")
    if "self_supervised" in meta:  # mrisr.infer.through_plane applies those (upscale_with_model dispatches)
        raise ConfigError(f"{name} is a self-supervised through-plane model; use upscale_with_model or mrisr upscale")
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
    if module.spatial_dims == 2:
        batch_size = max(1, min(batch_size, FORWARD_BYTES // sample_bytes(module, volume.spatial_shape, axis,
                                                                          patch_size)))
    check_memory(inference_memory_bytes(module, volume.spatial_shape, volume.shape, out_shape, axis, batch_size,
                                        patch_size, in_memory=in_memory), f"upscaling {volume.shape} to {out_shape}")
    calibration: dict[str, Any] | None = None
    if calibrate and module.spatial_dims == 2:
        from mrisr.infer.calibrate import residual_gain, with_residual_gain

        gain, calibration = residual_gain(module, [st for _, st in _slice_stacks(data, axis)], meta, dev)
        module = with_residual_gain(module, gain)
    run = ModelRun(volume, module, meta, dev, str(name), imap, data, factors, out_shape, axis, batch_size,
                   patch_size, overlap, calibration)
    run.engine = engine
    return run


def upscale_with_model(volume: Volume, model: ModelRef, scale: int | None = None,
                       device: str | torch.device = "cpu", *, progress: bool = False, **options: Any) -> Volume:
    """Super-resolve ``volume`` with a trained network, the whole output in memory.

    Args:
        volume, model, scale, device: as for :func:`prepare_upscale`.
        progress: show a progress bar.
        **options: the keyword options of :func:`prepare_upscale` (``axis``, ``batch_size``, ``patch_size``,
            ``overlap``, ``calibrate``, ``engine``).

    Returns:
        The super-resolved Volume (float32, input units) on the finer grid, same field of view; the same voxels
        as the slabs a streaming writer stores (:func:`mrisr.io.stream.write_slabs`).
    """
    # a self-supervised through-plane model file has its own flow
    from mrisr.infer.through_plane import upscale_self_supervised

    through_plane = upscale_self_supervised(volume, model, scale, device, progress, options)
    if through_plane is not None:
        return through_plane
    run = prepare_upscale(volume, model, scale, device, in_memory=True, **options)
    out = np.empty(run.out_shape, dtype=np.float32)
    for where, slab in run.slabs(progress):
        out[where] = slab
    return run.result(out)
