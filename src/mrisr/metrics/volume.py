"""Scores of one test volume against its reference, one per metric of :data:`mrisr.metrics.registry.METRICS`.

:class:`VolumePair` prepares the arrays once (frames, mask, data range, shared SSIM maps); each metric's spec
turns it into one number. Conventions of the built-in metrics (the same for every method, baseline or model):

* ``data_range`` is the reference's ``max - min`` over the whole volume (never a fixed 255 or 1).
* ``psnr`` and ``nrmse`` use every voxel, or the voxels of the mask.
* ``ssim`` is 2D SSIM per slice along ``slice_axis`` (default 2, the usual slice axis), averaged over
  slices: without a mask, the mean of scikit-image's per-slice SSIM; with a mask, the mean of the stacked
  per-slice SSIM maps over the mask voxels. This is what 2D super-resolution papers report.
* ``ssim3d`` is SSIM with a cubic window (7x7x7, or the 11-tap Gaussian) over the volume (mean of the
  cropped map, or of the full map over the mask); ``None`` for 2D images or volumes thinner than the window.
* 4D volumes are scored per frame and the frame values averaged.

Computation is in float64 on ``device``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mrisr.metrics.image import crop_mean, ssim_map, ssim_maps_slices_and_volume, window_radius
from mrisr.metrics.registry import METRICS, MetricOptions


def _frames(a: np.ndarray, spatial: int) -> torch.Tensor:
    """``(T, 1, *spatial)`` float64 tensor of a ``(*spatial[, T])`` array."""
    arr = np.asarray(a, dtype=np.float64)
    arr = np.moveaxis(arr, -1, 0) if arr.ndim > spatial else arr[None]
    return torch.from_numpy(np.ascontiguousarray(arr))[:, None]


@dataclass
class VolumePair:
    """A reference and a test volume ready for the metrics of :data:`mrisr.metrics.registry.METRICS`.

    ``reference``, ``test``: float64 ``(T, 1, *spatial)`` (one sample per time frame; T = 1 for 2D/3D data);
    ``mask``: bool of the same shape, or None for all voxels; ``data_range``: the reference's ``max - min``
    over the whole volume. Build it with :meth:`from_arrays`.
    """

    reference: torch.Tensor
    test: torch.Tensor
    mask: torch.Tensor | None
    data_range: float
    options: MetricOptions
    _ssim: tuple[float, float | None] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_arrays(cls, reference: np.ndarray, test: np.ndarray, mask: np.ndarray | None, spatial_ndim: int | None,
                    options: MetricOptions, device: str | torch.device = "cpu") -> VolumePair:
        """Check and convert voxel arrays (see :func:`score_arrays` for the arguments); ``ValueError`` on a shape
        mismatch, a constant reference or an empty mask."""
        ref_a, test_a = np.asarray(reference), np.asarray(test)
        if ref_a.shape != test_a.shape:
            raise ValueError(f"test shape {test_a.shape} differs from reference shape {ref_a.shape}")
        nsp = min(ref_a.ndim, 3) if spatial_ndim is None else spatial_ndim
        if not -3 <= int(options.slice_axis) < 3:
            raise ValueError(f"slice_axis must be 0, 1 or 2, got {options.slice_axis}")
        dev = torch.device(device)
        ref = _frames(ref_a, nsp).to(dev)
        tst = _frames(test_a, nsp).to(dev)
        data_range = float(ref.max() - ref.min())
        if data_range <= 0:
            raise ValueError("reference is constant: its data range is 0")
        m = None
        if mask is not None:
            mk = np.asarray(mask, dtype=bool)
            if mk.shape == ref_a.shape and ref_a.ndim > nsp:
                m = _frames(mk, nsp).to(dev)
            elif mk.shape == ref_a.shape[:nsp]:
                m = torch.from_numpy(mk)[None, None].to(dev).expand_as(ref)
            else:
                raise ValueError(f"mask shape {mk.shape} does not match the volume {ref_a.shape}")
            if not bool(m.any()):
                raise ValueError("mask is empty")
        return cls(ref, tst, m, data_range, options)

    @property
    def voxels(self) -> int:
        """Voxels scored: all, or those of the mask."""
        return int(self.reference.numel() if self.mask is None else self.mask.sum())

    def masked_frames(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(reference, test, mask)`` restricted to the frames holding mask voxels (all frames without a mask)."""
        if self.mask is None:
            return self.reference, self.test, None
        keep = self.mask.flatten(1).any(dim=1)
        return self.reference[keep], self.test[keep], self.mask[keep]

    def ssim_scores(self) -> tuple[float, float | None]:
        """``(slice-wise 2D SSIM, 3D SSIM or None)``, computed once: the two share the in-plane filtering."""
        if self._ssim is None:
            self._ssim = self._compute_ssim()
        return self._ssim

    def _compute_ssim(self) -> tuple[float, float | None]:
        ref, tst, m, dr = self.reference, self.test, self.mask, self.data_range
        gaussian = self.options.gaussian
        r = window_radius(gaussian)

        def average(smap: torch.Tensor, crop_dims: list[int]) -> float:
            if m is None:
                return float(crop_mean(smap, r, crop_dims).mean())
            return float(smap[m.expand_as(smap)].mean())

        if ref.ndim == 4:
            return average(ssim_map(ref, tst, dr, gaussian), [2, 3]), None
        ax = self.options.slice_axis % 3 + 2
        if min(ref.shape[2:]) > 2 * r:
            map2d, map3d = ssim_maps_slices_and_volume(ref, tst, dr, gaussian, slice_dim=ax)
            return average(map2d, [d for d in (2, 3, 4) if d != ax]), average(map3d, [2, 3, 4])
        # too thin for a 3D window: slice-wise only
        as2d = lambda t: t.movedim(ax, 1).reshape(-1, 1, *[t.shape[d] for d in (2, 3, 4) if d != ax])  # noqa: E731
        smap = ssim_map(as2d(ref), as2d(tst), dr, gaussian)
        return (float(crop_mean(smap, r).mean()) if m is None else float(smap[as2d(m.expand_as(ref))].mean())), None


def score_arrays(
    reference: np.ndarray,
    test: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    spatial_ndim: int | None = None,
    gaussian: bool = False,
    nrmse_normalization: str = "euclidean",
    slice_axis: int = 2,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Score ``test`` against ``reference`` (same shape, ``(X, Y)``, ``(X, Y, Z)`` or ``(X, Y, Z, T)``).

    Args:
        reference, test: voxel arrays on the same grid.
        mask: boolean array of the spatial shape (or the full shape), or ``None`` for all voxels.
        spatial_ndim: number of spatial axes (default ``min(ndim, 3)``).
        gaussian: Wang et al.'s Gaussian SSIM instead of scikit-image's uniform 7-window.
        nrmse_normalization: ``euclidean``, ``min-max`` or ``mean``.
        slice_axis: axis of the 2D slices for ``ssim`` on 3D volumes.

    Returns:
        ``{"data_range", <every metric of METRICS>, "voxels"}`` (floats; a metric that does not apply, e.g.
        ``ssim3d`` of a 2D image, is ``None``).
    """
    options = MetricOptions(gaussian=gaussian, nrmse_normalization=nrmse_normalization, slice_axis=slice_axis)
    pair = VolumePair.from_arrays(reference, test, mask, spatial_ndim, options, device)
    out: dict[str, Any] = {"data_range": pair.data_range}
    for name, spec in METRICS.items():
        out[name] = spec.score_volume(pair)
    out["voxels"] = pair.voxels
    return out
