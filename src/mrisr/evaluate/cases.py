"""Case discovery: which scans an evaluation input holds, their names, masks matched by name, one voxel layout.

Inputs are files or folders. A folder whose entries include scan files (``.nii``, ``.nii.gz``, ``.npy``,
``.png``, ``.tif``) or sub-folders holds one case per entry (sub-folders are DICOM series), named by the
file name without extension; any other folder is one DICOM series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrisr.errors import InputError
from mrisr.io import Volume, read_volume
from mrisr.metrics.masks import foreground_mask

SCAN_SUFFIXES = (".nii.gz", ".nii", ".npy", ".png", ".tif", ".tiff")


def case_name(path: Path) -> str:
    """The case name of a scan file or series folder: its name without a scan extension."""
    name = path.name
    for suf in (*SCAN_SUFFIXES, ".dcm"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def list_cases(path: str | Path) -> dict[str, Path]:
    """Cases under ``path`` (see module doc), by name."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_file():
        return {case_name(p): p}
    entries = sorted(e for e in p.iterdir() if not e.name.startswith("."))
    scans = [e for e in entries if e.is_dir() or e.name.lower().endswith(SCAN_SUFFIXES)]
    if not scans:
        return {p.name: p}  # a DICOM series folder
    cases: dict[str, Path] = {}
    for e in scans:
        name = case_name(e)
        if name in cases:
            raise InputError(f"two scans named {name!r} in {p}: {cases[name].name} and {e.name}")
        cases[name] = e
    return cases


def on_reference_grid(vol: Volume, ref_affine: np.ndarray) -> Volume:
    """``vol`` with its voxel axes permuted/flipped into the layout of ``ref_affine`` when that maps it onto the
    same grid (a DICOM series read back in the opposite slice order, a NIfTI saved RAS vs LPS...), else as is.

    Scores compare voxel by voxel, so two files of the same grid stored in different axis orders must be
    brought into one layout first; otherwise a perfect result scores like noise.
    """
    if len(vol.spatial_shape) != 3 or np.allclose(vol.affine, ref_affine, atol=1e-3):
        return vol
    from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform

    t = ornt_transform(io_orientation(vol.affine), io_orientation(ref_affine))
    affine = vol.affine @ inv_ornt_aff(t, vol.spatial_shape)
    if not np.allclose(affine, ref_affine, atol=1e-3):
        return vol
    return Volume(np.ascontiguousarray(apply_orientation(vol.data, t)), affine, vol.meta)


def case_mask(mask: str | None, case: str, reference: np.ndarray, spatial: int,
              ref_affine: np.ndarray | None = None) -> np.ndarray | None:
    """The scoring mask of ``case``: None (``mask`` None or ``"none"``: all voxels), the automatic foreground of
    ``reference`` (``"auto"``), or a mask file (a folder of masks: matched by case name), brought onto the
    reference's layout when ``ref_affine`` is given. Boolean, of the reference's (spatial) shape."""
    if mask is None or mask == "none":
        return None
    if mask == "auto":
        return foreground_mask(reference)
    path = Path(mask) if Path(mask).is_file() else list_cases(mask).get(case)
    if path is None:
        raise InputError(f"no mask named {case!r} in {mask}")
    mvol = read_volume(path)
    data = (mvol if ref_affine is None else on_reference_grid(mvol, ref_affine)).data
    if data.shape != reference.shape and data.shape != reference.shape[:spatial]:
        raise InputError(f"mask {path} has shape {data.shape}, the reference {reference.shape}")
    return data > 0
