"""Volume arrays -> stacks of 2D slices ``(T, S, H, W)``, the two axis orders, resizing and centre crop/pad.

Every prepared volume is stored as one 4D stack: ``T`` time frames (1 for a 3D scan), ``S`` slices
along the chosen slicing axis, and the two remaining in-plane axes ``H, W`` in their original order
(:func:`to_stack`). 2D samples are slices ``(H, W)`` of it.

Two axis orders meet in 3D, and only the functions here convert between them:

* **stack order** ``(S, H, W)``, the slice axis first: the stored arrays, 3D patch origins and sizes
  (``prepare``'s ``patch3d``, a dataset's 3D ``patch_size``, the manifest's ``patches3d``);
* **volume order** ``(H, W, S)``, the slice axis last: :class:`~mrisr.io.volume.Volume` data ``(X, Y, Z)``
  (slicing along axis 2), degradations (whose through-plane axis is 2), the 3D networks (through-plane
  factor on the last tensor dim) and the 3D samples a dataset returns.

:func:`to_stack_order` and :func:`to_volume_order` move the slice axis between the two, for arrays
(the last three axes) and for per-axis values (factors, sizes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar, overload

import numpy as np

_T = TypeVar("_T")


def stack_axes(axis: int) -> tuple[int, int, int]:
    """The spatial axes of a volume in stack order ``(S, H, W)`` when slicing along ``axis`` (0, 1 or 2)."""
    if axis not in (0, 1, 2):
        raise ValueError(f"slice axis must be 0, 1 or 2, got {axis}")
    h, w = (a for a in (0, 1, 2) if a != axis)
    return (axis, h, w)


def to_stack(data: np.ndarray, axis: int = 2) -> np.ndarray:
    """Rearrange a 2D ``(X, Y)``, 3D ``(X, Y, Z)`` or 4D ``(X, Y, Z, T)`` array to ``(T, S, H, W)``.

    Args:
        axis: spatial axis (0, 1 or 2) to slice along; ignored for 2D input (one slice).

    Returns:
        A view when possible (no copy), shape ``(T, S, H, W)``.
    """
    if data.ndim == 2:
        return data[None, None]
    axes = stack_axes(axis)
    if data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4:
        raise ValueError(f"expected a 2D, 3D or 4D array, got shape {data.shape}")
    return np.transpose(data, (3, *axes))


@overload
def to_stack_order(x: np.ndarray) -> np.ndarray: ...
@overload
def to_stack_order(x: Sequence[_T]) -> tuple[_T, _T, _T]: ...
def to_stack_order(x: np.ndarray | Sequence[_T]) -> np.ndarray | tuple[_T, _T, _T]:
    """Volume order ``(..., H, W, S)`` -> stack order ``(..., S, H, W)``: the slice axis from last to first.

    ``x`` is an array (its last three axes move; a view) or three per-axis values such as factors or
    sizes (``(fH, fW, fS)`` -> ``(fS, fH, fW)``).
    """
    if isinstance(x, np.ndarray):
        return np.moveaxis(x, -1, -3)
    a, b, c = x
    return (c, a, b)


@overload
def to_volume_order(x: np.ndarray) -> np.ndarray: ...
@overload
def to_volume_order(x: Sequence[_T]) -> tuple[_T, _T, _T]: ...
def to_volume_order(x: np.ndarray | Sequence[_T]) -> np.ndarray | tuple[_T, _T, _T]:
    """Stack order ``(..., S, H, W)`` -> volume order ``(..., H, W, S)``: the inverse of :func:`to_stack_order`."""
    if isinstance(x, np.ndarray):
        return np.moveaxis(x, -3, -1)
    a, b, c = x
    return (b, c, a)


def stack_spacing(spacing: Sequence[float], axis: int = 2) -> tuple[float, float, float]:
    """Voxel size ``(S, H, W)`` in mm of :func:`to_stack`'s output, from a volume's spatial spacing."""
    sp = [float(s) for s in spacing]
    if len(sp) == 2:
        return (1.0, sp[0], sp[1])
    a, h, w = stack_axes(axis)
    return (sp[a], sp[h], sp[w])


def resize_stack(stack: np.ndarray, size: tuple[int, int], mode: str = "bicubic") -> np.ndarray:
    """Resize the last two axes of ``stack`` to ``size`` (float32 out).

    ``mode="bicubic"`` (images: anti-aliased when shrinking, clipped to the input's range so cubic
    overshoot does not leave [0, 1]) or ``"nearest"`` (label masks).
    """
    import torch
    import torch.nn.functional as F

    h, w = stack.shape[-2:]
    if (h, w) == tuple(size):
        return np.asarray(stack, dtype=np.float32)
    lead = stack.shape[:-2]
    x = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32)).reshape(-1, 1, h, w)
    if mode == "nearest":
        y = F.interpolate(x, size=tuple(size), mode="nearest-exact")
    elif mode == "bicubic":
        shrink = size[0] < h or size[1] < w
        y = F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=False, antialias=shrink)
        y = y.clamp_(float(x.min()), float(x.max()))
    else:
        raise ValueError(f"unknown resize mode {mode!r}")
    return y.reshape(*lead, *size).numpy()


def centre_crop_pad(stack: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Centre-crop or zero-pad the last two axes of ``stack`` to ``size``.

    Returns:
        ``(out, offset)`` where ``offset[i]`` is the index in the input of output pixel 0 along axis
        ``i`` (negative where padding was added).
    """
    out_shape = (*stack.shape[:-2], *size)
    out = np.zeros(out_shape, dtype=stack.dtype)
    src: list[slice] = []
    dst: list[slice] = []
    offset: list[int] = []
    for n_in, n_out in zip(stack.shape[-2:], size, strict=True):
        off = (n_in - n_out) // 2
        offset.append(off)
        lo = max(off, 0)
        hi = min(off + n_out, n_in)
        src.append(slice(lo, hi))
        dst.append(slice(lo - off, hi - off))
    out[(Ellipsis, *dst)] = stack[(Ellipsis, *src)]  # type: ignore[index,arg-type]
    return out, (offset[0], offset[1])


def foreground_fraction(stack: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """Fraction of pixels above ``threshold`` in each slice: shape ``stack.shape[:-2]``.

    ``stack`` is expected normalised to [0, 1]; ``threshold`` is in those units.
    """
    return (np.asarray(stack) > threshold).mean(axis=(-2, -1))
