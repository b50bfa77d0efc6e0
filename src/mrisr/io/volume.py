"""The :class:`Volume`: voxels that travel with their geometry until the writer.

Array convention (nibabel's): ``data[i, j, k, t]`` where ``(i, j, k)`` are voxel indices mapped to world
coordinates by ``affine``; ``t`` (time / cardiac phase, optional) is always last. For DICOM, ``i`` runs
along a row (column index), ``j`` down the columns (row index) and ``k`` across slices, so a DICOM
frame ``pixel_array[r, c]`` appears as ``data[c, r, k]``. 2D images are stored as ``(X, Y)`` with the
affine mapping ``(i, j, 0)``.

World space is RAS+ in millimetres (NIfTI convention). DICOM's LPS patient coordinates are converted on
reading and back on writing (negate x and y).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mrisr.errors import InputError

# Orientation of world axes: RAS+ as in NIfTI. DICOM patient space is LPS+.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Volume:
    """Voxels plus geometry plus the source metadata needed to write a faithful output.

    Attributes:
        data: float32 array, shape ``(X, Y)``, ``(X, Y, Z)`` or ``(X, Y, Z, T)``; intensities in the
            scanner's physical units (rescale slope/intercept or NIfTI scaling already applied).
        affine: 4x4 float64, voxel index ``(i, j, k, 1)`` -> RAS+ world position in mm of that voxel's
            centre. For a 2D volume ``k`` is 0.
        meta: source metadata. Keys used across mrisr (all optional):
            ``format`` ("nifti", "dicom", "png", "tiff", "npy"), ``source`` (path string),
            ``modality``, ``series_description``, ``series_uid``, ``patient_id``,
            ``time_spacing`` (seconds between frames of a 4D volume),
            ``dicom_headers`` (list of pydicom Datasets without pixel data, one per slice, in k order),
            ``stored_dtype`` (numpy dtype name of the stored integers), ``rescale`` ((slope, intercept)),
            ``history`` (list of dicts: degradations / upscalings applied, with their parameters).
    """

    data: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim not in (2, 3, 4):
            raise InputError(f"a volume must be 2D, 3D or 4D (time last), got shape {data.shape}")
        if data.dtype != np.float32:
            data = data.astype(np.float32)
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise InputError(f"affine must be 4x4, got {affine.shape}")
        if not np.all(np.isfinite(affine)):
            raise InputError("affine contains NaN or Inf")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise InputError("affine is singular (zero voxel size or collinear axes)")
        self.data = data
        self.affine = affine

    # -- geometry -----------------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the spatial axes: ``(X, Y)`` or ``(X, Y, Z)``."""
        return tuple(self.data.shape[: min(self.data.ndim, 3)])

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size in mm along each spatial array axis (``len == min(ndim, 3)``)."""
        sp = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        return tuple(float(s) for s in sp[: len(self.spatial_shape)])

    @property
    def orientation(self) -> str:
        """Axis codes such as ``"RAS"`` or ``"LPS"`` (nibabel's ``aff2axcodes``)."""
        import nibabel as nib

        return "".join(str(c) for c in nib.aff2axcodes(self.affine))

    def voxel_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """Map voxel indices ``(..., 3)`` to RAS+ mm ``(..., 3)``."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def with_data(self, data: np.ndarray, affine: np.ndarray | None = None, **meta: Any) -> Volume:
        """A new Volume sharing this one's metadata, with new voxels (and optionally a new affine)."""
        new_meta = dict(self.meta)
        new_meta.update(meta)
        return replace(self, data=data, affine=self.affine if affine is None else affine, meta=new_meta)

    def check_finite(self) -> None:
        """Raise :class:`InputError` if any voxel is NaN or Inf."""
        if not np.all(np.isfinite(self.data)):
            bad = int((~np.isfinite(self.data)).sum())
            raise InputError(f"{bad} voxel(s) are NaN or Inf in {self.meta.get('source', 'the volume')}")
