"""Case discovery: which scans an evaluation input holds, their names, masks matched by name, one voxel layout,
the overlap of two grids and the region variants of a mask.

Inputs are files or folders. A folder whose entries include scan files (``.nii``, ``.nii.gz``, ``.npy``,
``.png``, ``.tif``) or sub-folders holds one case per entry (sub-folders are DICOM series, ``.dcm`` files
single-file DICOM scans), named by the file name without extension; its other files are listed as skipped
(:func:`find_cases`). Any other folder is one DICOM series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class CaseList:
    """The cases of an input by name, and the entries left out with the reason (``(path, why)``)."""

    cases: dict[str, Path]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def find_cases(path: str | Path) -> CaseList:
    """Cases under ``path`` (see module doc) and the files of a folder of scans that are not scans."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_file():
        return CaseList({case_name(p): p})
    entries = sorted(e for e in p.iterdir() if not e.name.startswith("."))
    scans = [e for e in entries if e.is_dir() or e.name.lower().endswith(SCAN_SUFFIXES)]
    if not scans:
        return CaseList({p.name: p})  # a DICOM series folder
    # beside other scans a .dcm file is a scan of its own (single-frame or enhanced multi-frame DICOM)
    scans = [e for e in entries if e in scans or e.name.lower().endswith(".dcm")]
    found = CaseList({}, [(str(e), "not a scan file (.nii, .nii.gz, .dcm, .npy, .png, .tif) or a series folder")
                          for e in entries if e not in scans])
    for e in scans:
        name = case_name(e)
        if name in found.cases:
            raise InputError(f"two scans named {name!r} in {p}: {found.cases[name].name} and {e.name}")
        found.cases[name] = e
    return found


def list_cases(path: str | Path) -> dict[str, Path]:
    """Cases under ``path`` (see module doc), by name."""
    return find_cases(path).cases


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


def grid_overlap(ref: Volume, test: Volume) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Index ranges ``(in the reference, in the test)`` of the voxels two grids share, when ``test``'s grid is the
    reference grid shifted by whole voxels (same spacing and directions: a centre crop, a padded copy); None
    when the affines do not say so (another spacing, a rotation, a sub-voxel shift) or the grids do not meet.

    Spatial axes only; a time axis is kept whole. Example: ``mrisr degrade`` crops a 33 x 41 x 25 scan to
    32 x 40 x 25 before degrading, so its upscaled output covers ``[0:32, 0:40, 0:25]`` of the original.
    """
    nsp = len(ref.spatial_shape)
    if len(test.spatial_shape) != nsp or ref.shape[nsp:] != test.shape[nsp:]:
        return None
    m = np.linalg.solve(np.asarray(ref.affine, dtype=np.float64), np.asarray(test.affine, dtype=np.float64))
    shift = m[:3, 3]
    if not np.allclose(m[:3, :3], np.eye(3), atol=1e-4) or not np.allclose(shift, np.round(shift), atol=1e-3):
        return None
    offset = np.round(shift).astype(int)
    if nsp < 3 and offset[2] != 0:
        return None
    in_ref, in_test = [], []
    for a in range(nsp):
        lo, hi = max(0, int(offset[a])), min(ref.spatial_shape[a], int(offset[a]) + test.spatial_shape[a])
        if hi <= lo:
            return None
        in_ref.append(slice(lo, hi))
        in_test.append(slice(lo - int(offset[a]), hi - int(offset[a])))
    return tuple(in_ref), tuple(in_test)


#: Width in voxels of the edge band of a mask (and the erosion of its interior).
EDGE_WIDTH = 6

#: Region variants of a scoring mask, in table order: the whole mask, its interior, its edge band.
REGIONS = ("whole", "interior", "edge")


def region_masks(mask: np.ndarray, spatial: int, width: int = EDGE_WIDTH) -> dict[str, np.ndarray]:
    """``{"whole": mask, "interior": mask eroded by width voxels, "edge": the width-voxel band between}``.

    ``mask``: bool ``(*spatial[, T])``. A voxel is interior when its Euclidean distance (in voxels) to the
    nearest voxel outside the mask exceeds ``width``; the field of view's border does not count as outside,
    so a slab cut from a larger scan keeps its cut faces in the interior. The edge band holds the contrast
    of the object against its background (a brain against a template's zero background), where a gain over
    interpolation is easiest to make. 4D masks are eroded frame by frame.
    """
    from scipy import ndimage

    m = np.asarray(mask, dtype=bool)
    if m.ndim > spatial:
        dist = np.stack([ndimage.distance_transform_edt(m[..., t]) for t in range(m.shape[-1])], axis=-1)
    else:
        dist = ndimage.distance_transform_edt(m)
    interior = dist > width
    return {"whole": m, "interior": interior, "edge": m & ~interior}
