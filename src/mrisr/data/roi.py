"""Region of interest from segmentation masks: the union bounding box plus a margin (cardiac heart crop)."""

from __future__ import annotations

import numpy as np


def union_bbox(mask_stack: np.ndarray) -> tuple[int, int, int, int] | None:
    """In-plane bounding box ``(h0, h1, w0, w1)`` (half-open) of all nonzero pixels of a mask stack.

    The union is taken over every leading axis (time frames and slices), so one box fits the whole
    volume. Returns None when the masks are empty.
    """
    fg = np.asarray(mask_stack) != 0
    rows = np.flatnonzero(fg.any(axis=(*range(fg.ndim - 2), fg.ndim - 1)))
    cols = np.flatnonzero(fg.any(axis=tuple(range(fg.ndim - 1))))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def expand_bbox(bbox: tuple[int, int, int, int], margin: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Grow ``bbox`` by ``margin`` pixels on each side, clipped to an image of ``shape`` ``(H, W)``."""
    h0, h1, w0, w1 = bbox
    return (max(h0 - margin, 0), min(h1 + margin, shape[0]), max(w0 - margin, 0), min(w1 + margin, shape[1]))


def crop_bbox(stack: np.ndarray, bbox: tuple[int, int, int, int]) -> np.ndarray:
    """Crop the last two axes of ``stack`` to ``bbox`` (a view)."""
    h0, h1, w0, w1 = bbox
    return stack[..., h0:h1, w0:w1]
