"""Automatic foreground masks: Otsu's threshold on the reference, holes filled."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def foreground_mask(x: np.ndarray) -> np.ndarray:
    """Boolean foreground of an MR image or volume (any spatial shape).

    Voxels above Otsu's threshold (scikit-image), with enclosed holes filled (in 2D or 3D as the input).
    A constant image has no foreground (all False).
    """
    from skimage.filters import threshold_otsu

    a = np.asarray(x, dtype=np.float64)
    finite = a[np.isfinite(a)]
    if finite.size == 0 or finite.min() == finite.max():
        return np.zeros(a.shape, dtype=bool)
    mask = a > threshold_otsu(finite)
    return np.asarray(ndimage.binary_fill_holes(mask), dtype=bool)
