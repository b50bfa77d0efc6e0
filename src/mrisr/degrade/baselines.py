"""Interpolation baselines: the grid a model would produce, by nearest, linear, bicubic, Lanczos or sinc.

Every baseline maps ``n`` samples to ``n * f`` samples covering the same field of view (output sample ``j``
at input index ``(j + 0.5) / f - 0.5``), the grid a super-resolution model outputs; see
:mod:`mrisr.degrade.resample` for the kernels and :mod:`mrisr.degrade.kspace` for zero-filling.
In 3D, ``linear`` is trilinear and ``bicubic``/``lanczos`` are the separable (tri)cubic / Lanczos-3 kernels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from mrisr.errors import ConfigError

if TYPE_CHECKING:  # the names below are read by CLI parsers: importing this module must stay cheap
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


def upscale_volume(vol: Volume, factors: Sequence[float], method: str) -> Volume:
    """Upscale a Volume by ``factors`` (one per spatial axis, integer-valued) with a baseline.

    Time frames of a 4D volume are upscaled independently. The affine is rescaled with the field of view
    kept, and ``{"op": "upscale", "method", "factors"}`` is appended to ``meta["history"]``.
    """
    from mrisr.degrade.grid import resampled_volume, spatial_ndim, tensor_to_data, volume_to_tensor
    from mrisr.io.limits import check_voxel_count

    _check_method(method)
    nd = spatial_ndim(vol)
    if len(factors) != nd:
        raise ConfigError(f"need {nd} factors for a volume of shape {vol.shape}, got {list(factors)}")
    ints = [round(float(f)) for f in factors]
    if any(abs(float(f) - i) > 1e-9 or i < 1 for f, i in zip(factors, ints, strict=True)):
        raise ConfigError(f"upscaling factors must be positive integers, got {list(factors)}")
    check_voxel_count(tuple(n * f for n, f in zip(vol.spatial_shape, ints, strict=True)) + vol.shape[nd:],
                      "the upscaled output")
    x = volume_to_tensor(vol)
    y = upscale_tensor(x, ints, method)
    data = tensor_to_data(y, time_axis=vol.ndim == 4)
    return resampled_volume(vol, data, ints, {"op": "upscale", "method": method})
