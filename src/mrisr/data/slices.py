"""Volume arrays -> stacks of 2D slices ``(T, S, H, W)``, resizing and centre crop/pad.

Every prepared volume is stored as one 4D stack: ``T`` time frames (1 for a 3D scan), ``S`` slices
along the chosen slicing axis, and the two remaining in-plane axes ``H, W`` in their original order.
The same stack serves 2D models (one sample per ``(t, s)``) and 3D models (``(S, H, W)`` is the
``(D, H, W)`` volume of frame ``t``, the slicing axis being the through-plane depth).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def to_stack(data: np.ndarray, axis: int = 2) -> np.ndarray:
    """Rearrange a 2D ``(X, Y)``, 3D ``(X, Y, Z)`` or 4D ``(X, Y, Z, T)`` array to ``(T, S, H, W)``.

    Args:
        axis: spatial axis (0, 1 or 2) to slice along; ignored for 2D input (one slice).

    Returns:
        A view when possible (no copy), shape ``(T, S, H, W)``.
    """
    if data.ndim == 2:
        return data[None, None]
    if axis not in (0, 1, 2):
        raise ValueError(f"slice axis must be 0, 1 or 2, got {axis}")
    if data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4:
        raise ValueError(f"expected a 2D, 3D or 4D array, got shape {data.shape}")
    inplane = [a for a in (0, 1, 2) if a != axis]
    return np.transpose(data, (3, axis, *inplane))


def stack_spacing(spacing: Sequence[float], axis: int = 2) -> tuple[float, float, float]:
    """Voxel size ``(S, H, W)`` in mm of :func:`to_stack`'s output, from a volume's spatial spacing."""
    sp = [float(s) for s in spacing]
    if len(sp) == 2:
        return (1.0, sp[0], sp[1])
    inplane = [a for a in (0, 1, 2) if a != axis]
    return (sp[axis], sp[inplane[0]], sp[inplane[1]])


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
