"""Interpolation baselines: the grid a model would produce, by nearest, linear, bicubic, Lanczos or sinc.

Every baseline maps ``n`` samples to ``n * f`` samples covering the same field of view (output sample ``j``
at input index ``(j + 0.5) / f - 0.5``), the grid a super-resolution model outputs; see
:mod:`mrisr.degrade.resample` for the kernels and :mod:`mrisr.degrade.kspace` for zero-filling.
In 3D, ``linear`` is trilinear and ``bicubic``/``lanczos`` are the separable (tri)cubic / Lanczos-3 kernels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mrisr.errors import ConfigError

if TYPE_CHECKING:  # the names below are read by CLI parsers: importing this module must stay cheap
    import numpy as np
    import torch

    from mrisr.io.volume import Volume

#: The one declaration of the baselines: name -> kernel of :func:`mrisr.degrade.resample.resize`, or None for
#: k-space zero-filling (:func:`mrisr.degrade.kspace.zerofill_upsample`). The CLI, configs, reports and the
#: generators' ``residual`` option all take these names, in this order (the order of every results table).
_KERNEL_OF: dict[str, str | None] = {
    "nearest": "nearest", "linear": "linear", "bicubic": "cubic", "lanczos": "lanczos", "zerofill": None,
}
BASELINES: tuple[str, ...] = tuple(_KERNEL_OF)


def is_baseline(method: str) -> bool:
    """True for the name of an interpolation baseline (anything else is a model name or path)."""
    return method in _KERNEL_OF


def baselines_first(methods: Iterable[str]) -> list[str]:
    """``methods`` with the baselines first, in :data:`BASELINES` order (once each), then the others as given."""
    names = list(methods)
    return [b for b in BASELINES if b in names] + [m for m in names if not is_baseline(m)]


def _check_method(method: str) -> None:
    if not is_baseline(method):
        raise ConfigError(f"unknown upscaling method {method!r}; baselines are {', '.join(BASELINES)}")


def upscale_tensor(x: torch.Tensor, factors: int | Sequence[int], method: str) -> torch.Tensor:
    """Upscale the spatial dims of ``x`` (``(N, C, *spatial)``, 2 or 3 spatial dims) by integer factors.

    Args:
        x: real tensor, any float dtype/device.
        factors: one integer per spatial dim (or one for all); 1 leaves a dim alone.
        method: one of :data:`BASELINES`.

    Returns:
        ``(N, C, *(spatial * factors))`` tensor of ``x``'s dtype.
    """
    _check_method(method)
    nsp = x.ndim - 2
    if nsp < 1:
        raise ValueError(f"expected (N, C, *spatial), got shape {tuple(x.shape)}")
    fs = [int(factors)] * nsp if isinstance(factors, int) else [int(f) for f in factors]
    if len(fs) != nsp or any(f < 1 for f in fs):
        raise ValueError(f"need {nsp} positive integer factors, got {factors}")
    dims = list(range(2, x.ndim))
    kernel = _KERNEL_OF[method]
    if kernel is None:
        from mrisr.degrade.kspace import zerofill_upsample

        return zerofill_upsample(x, fs, dims)
    from mrisr.degrade.resample import resize

    sizes = [x.shape[d] * f for d, f in zip(dims, fs, strict=True)]
    return resize(x, sizes, dims, kernel)


def _integer_factors(vol: Volume, factors: Sequence[float]) -> list[int]:
    """``factors`` (one per spatial axis of ``vol``) as positive integers, after checking them and the output's
    voxel count."""
    from mrisr.degrade.grid import spatial_ndim
    from mrisr.io.limits import check_voxel_count

    nd = spatial_ndim(vol)
    if len(factors) != nd:
        raise ConfigError(f"need {nd} factors for a volume of shape {vol.shape}, got {list(factors)}")
    ints = [round(float(f)) for f in factors]
    if any(abs(float(f) - i) > 1e-9 or i < 1 for f, i in zip(factors, ints, strict=True)):
        raise ConfigError(f"upscaling factors must be positive integers, got {list(factors)}")
    check_voxel_count(tuple(n * f for n, f in zip(vol.spatial_shape, ints, strict=True)) + vol.shape[nd:],
                      "the upscaled output")
    return ints


def upscale_volume(vol: Volume, factors: Sequence[float], method: str) -> Volume:
    """Upscale a Volume by ``factors`` (one per spatial axis, integer-valued) with a baseline.

    Time frames of a 4D volume are upscaled independently. The affine is rescaled with the field of view
    kept, and ``{"op": "upscale", "method", "factors"}`` is appended to ``meta["history"]``.
    """
    from mrisr.degrade.grid import resampled_volume, tensor_to_data, volume_to_tensor

    _check_method(method)
    ints = _integer_factors(vol, factors)
    x = volume_to_tensor(vol)
    y = upscale_tensor(x, ints, method)
    data = tensor_to_data(y, time_axis=vol.ndim == 4)
    return resampled_volume(vol, data, ints, {"op": "upscale", "method": method})


#: Output bytes (float32) per streamed slab of a baseline.
SLAB_BYTES = 64 * 2**20
#: Input samples each side of a slab along a refined axis: more than the widest kernel reaches (Lanczos-3
#: reads 3 samples each side), so a slab's interior equals the whole volume's.
HALO = 4


def stream_axis(factors: Sequence[int], method: str) -> tuple[int | None, int]:
    """The spatial axis a baseline streams along and the halo (input samples) each slab needs on it.

    An axis the baseline leaves alone (factor 1; the slice axis 2 first) needs no halo. When every axis is
    refined, an interpolation kernel streams along the last axis with a :data:`HALO`; zero-filling (a Fourier
    transform along every refined axis) cannot be cut, and a 2D image is not worth cutting: ``(None, 0)``,
    one whole frame at a time.
    """
    nd = len(factors)
    free = [a for a in (2, 1, 0)[3 - nd:] if factors[a] == 1] if nd == 3 else []
    if free:
        return free[0], 0
    if nd == 3 and _KERNEL_OF[method] is not None:
        return 2, HALO
    return None, 0


def baseline_slabs(vol: Volume, factors: Sequence[float], method: str,
                   slab_bytes: int = SLAB_BYTES) -> tuple[Volume, Iterator[tuple[tuple[Any, ...], np.ndarray]]]:
    """A baseline upscaling as a stream: ``(template, slabs)`` for :func:`mrisr.io.stream.write_slabs`.

    ``template`` is the output Volume over a placeholder (the affine, shape and history
    :func:`upscale_volume` gives); ``slabs`` yields ``(index into the output (*spatial[, T]), voxels)`` in file
    order, slabs of input slices along :func:`stream_axis` (with their halo, cut off after upscaling) in each
    time frame, each with at most about ``slab_bytes`` of float32 output. The voxels equal
    :func:`upscale_volume`'s (the same kernels on the same samples; float rounding may differ).
    """
    from mrisr.degrade.grid import resampled_volume, spatial_ndim
    from mrisr.io.stream import placeholder

    _check_method(method)
    ints = _integer_factors(vol, factors)
    nd = spatial_ndim(vol)
    out_shape = tuple(n * f for n, f in zip(vol.spatial_shape, ints, strict=True)) + vol.shape[nd:]
    template = resampled_volume(vol, placeholder(out_shape), ints, {"op": "upscale", "method": method})
    axis, halo = stream_axis(ints, method)
    return template, _baseline_slabs(vol, ints, method, axis, halo, slab_bytes)


def _baseline_slabs(vol: Volume, ints: list[int], method: str, axis: int | None, halo: int,
                    slab_bytes: int) -> Iterator[tuple[tuple[Any, ...], np.ndarray]]:
    """The slabs of :func:`baseline_slabs`: each one :func:`upscale_volume` of a slab of input slices (one frame)."""
    from mrisr.io.volume import Volume

    nd = len(ints)
    frames: list[tuple[int, ...]] = [(t,) for t in range(vol.shape[3])] if vol.ndim == 4 else [()]
    n = vol.spatial_shape[axis] if axis is not None else 1
    out_plane = math.prod(v * f for d, (v, f) in enumerate(zip(vol.spatial_shape, ints, strict=True)) if d != axis)
    step = n if axis is None else max(1, slab_bytes // (4 * out_plane * ints[axis]))
    for frame in frames:
        for s0 in range(0, n, step):
            s1 = min(n, s0 + step)
            index: list[Any] = [slice(None)] * nd
            out_index: list[Any] = [slice(None)] * nd
            keep: list[Any] = [slice(None)] * nd
            if axis is not None:
                h0, h1 = max(0, s0 - halo), min(n, s1 + halo)
                index[axis] = slice(h0, h1)
                out_index[axis] = slice(s0 * ints[axis], s1 * ints[axis])
                keep[axis] = slice((s0 - h0) * ints[axis], (s1 - h0) * ints[axis])
            part = Volume(vol.data[(*index, *frame)], vol.affine)
            yield (*out_index, *frame), upscale_volume(part, ints, method).data[tuple(keep)]
