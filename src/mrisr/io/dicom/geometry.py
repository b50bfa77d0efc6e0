"""Frames and their patient geometry: one 2D image's position, orientation and pixel spacing, and the
conversion between that geometry and a RAS affine (both directions).

Geometry (DICOM PS3.3 C.7.6.2.1.1, written once here):

* A frame's ``pixel_array[r, c]`` becomes ``data[c, r, k]`` (see :mod:`mrisr.io.volume`).
* ``ImageOrientationPatient`` holds the row direction (first three values: the direction in which the
  column index ``c`` grows) and the column direction (last three: ``r`` grows). ``PixelSpacing`` is
  ``[row spacing, column spacing]``: the distance between rows (along the column direction) first.
  So the affine's column ``i`` is ``row_dir * PixelSpacing[1]`` and column ``j`` is
  ``col_dir * PixelSpacing[0]``.
* The slice normal is ``row_dir x col_dir``; the affine's column ``k`` is the step between neighbouring
  slices (see :mod:`mrisr.io.dicom.series` for how it is measured).
* The origin is the ``ImagePositionPatient`` (centre of the first transmitted pixel) of the first slice.
* DICOM patient space is LPS+; mrisr's world is RAS+, so the first two rows of the affine are negated
  (:data:`mrisr.io.volume.LPS_TO_RAS`, its own inverse).

Enhanced multi-frame files carry this geometry per frame in functional groups
(:func:`frames_from_multiframe`); single-frame files at the top level (:func:`frame_from_single`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mrisr.errors import InputError
from mrisr.io.dicom.reading import float_value, float_values, int_value, rescale_of, stated_values
from mrisr.io.volume import LPS_TO_RAS

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

#: Tolerance on unit-vector components when comparing / validating ImageOrientationPatient.
ORIENTATION_TOLERANCE = 1e-4
#: Single-frame attributes that tell images at one slice position apart (time points, echoes, b-values);
#: ``AcquisitionTime`` is a TM value, read as seconds.
TEMPORAL_KEYWORDS = ("TemporalPositionIdentifier", "TriggerTime", "EchoTime", "AcquisitionTime", "EchoNumbers",
                     "InversionTime", "DiffusionBValue")
#: ImageOrientationPatient assumed when a data set has none: rows along L, columns along P (axial).
AXIAL_IOP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass
class Frame:
    """One 2D image (a single-frame file or one frame of a multi-frame file) with its geometry."""

    source: str
    rows: int
    cols: int
    iop: np.ndarray | None  # (6,) LPS unit vectors: row direction, column direction
    ipp: np.ndarray | None  # (3,) LPS mm, centre of the first transmitted pixel
    pixel_spacing: np.ndarray | None  # (2,) [row spacing, column spacing] mm
    thickness: float | None  # SpacingBetweenSlices, else SliceThickness (single-slice fallback)
    slope: float
    intercept: float
    time_key: tuple[float, ...]
    trigger_ms: float | None
    load: Callable[[], np.ndarray]  # stored values, (rows, cols)
    header: Dataset | None = None
    #: What tells this frame apart from others at its position (time, echo, b-value); equal keys at one
    #: position mean duplicated images, not time points. Frames of one multi-frame file always differ.
    temporal: tuple[float, ...] = ()


def _checked_iop(iop: np.ndarray, where: str) -> np.ndarray:
    row, col = iop[:3], iop[3:]
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if abs(nr - 1) > 1e-2 or abs(nc - 1) > 1e-2 or abs(float(row @ col)) > 1e-2:
        raise InputError(
            f"{where}: ImageOrientationPatient {iop.round(6).tolist()} is not two orthogonal unit vectors"
        )
    return np.concatenate([row / nr, col / nc])


def slice_normal(iop: np.ndarray) -> np.ndarray:
    """Slice normal ``row_dir x col_dir`` (LPS, unit length for a checked orientation), shape ``(3,)``.

    Args:
        iop: ``(6,)`` ImageOrientationPatient: row direction, then column direction.
    """
    return np.cross(iop[:3], iop[3:])


def frame_affine(iop: np.ndarray, pixel_spacing: np.ndarray, k_step: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """RAS affine of a stack of frames (the inverse of :func:`grid_geometry`).

    Args:
        iop: ``(6,)`` LPS unit row direction, then column direction (ImageOrientationPatient).
        pixel_spacing: ``(2,)`` mm, ``[row spacing, column spacing]`` (PixelSpacing order).
        k_step: ``(3,)`` LPS mm from one slice to the next.
        origin: ``(3,)`` LPS mm, ImagePositionPatient of the first slice.

    Returns:
        4x4 float64 voxel ``(i = column, j = row, k = slice)`` -> RAS mm matrix.
    """
    affine = np.eye(4)
    affine[:3, 0] = iop[:3] * pixel_spacing[1]
    affine[:3, 1] = iop[3:] * pixel_spacing[0]
    affine[:3, 2] = k_step
    affine[:3, 3] = origin
    return LPS_TO_RAS @ affine


def _positive_spacing(spacing: np.ndarray | None, keyword: str, where: Path | str) -> np.ndarray | None:
    """``spacing`` (mm, ``[row, column]``) unchanged, or refused when zero or negative (a negative spacing
    would flip the image: left-right or anterior-posterior)."""
    if spacing is not None and not np.all(spacing > 0):
        raise InputError(f"{where}: {keyword} {spacing.tolist()} must be positive mm (a negative spacing would "
                         "flip the image)")
    return spacing


def _pixel_spacing(ds: Dataset, where: Path | str) -> np.ndarray | None:
    """PixelSpacing, else ImagerPixelSpacing (projection images), ``(2,)`` mm; None when neither is given."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        spacing = stated_values(ds.get(keyword), 2, keyword, where)
        if spacing is not None:
            return _positive_spacing(spacing, keyword, where)
    return None


def _tm_seconds(value: Any) -> float | None:
    """DICOM TM ``HHMMSS.ffffff`` (or DT) -> seconds; None when absent or unparsable."""
    text = str(value or "").strip()
    m = re.match(r"^(?:\d{8})?(\d{2})(\d{2})?(\d{2})?(\.\d+)?", text)
    if not text or not m:
        return None
    h, mi, s, frac = m.groups()
    return int(h) * 3600 + int(mi or 0) * 60 + int(s or 0) + float(frac or 0)


def _key(*values: float | None) -> tuple[float, ...]:
    return tuple(math.inf if v is None else float(v) for v in values)


def frame_from_single(ds: Dataset, path: Path, load: Callable[[], np.ndarray]) -> Frame:
    """The frame of a single-frame data set; ``load`` returns its stored values ``(rows, cols)``."""
    iop = stated_values(ds.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", path)
    spacing = _pixel_spacing(ds, path)
    slope, intercept = rescale_of(ds)
    thickness = float_value(ds.get("SpacingBetweenSlices")) or float_value(ds.get("SliceThickness"))
    return Frame(
        source=str(path),
        rows=int_value(ds, "Rows", 0, path),
        cols=int_value(ds, "Columns", 0, path),
        iop=None if iop is None else _checked_iop(iop, str(path)),
        ipp=stated_values(ds.get("ImagePositionPatient"), 3, "ImagePositionPatient", path),
        pixel_spacing=spacing,
        thickness=thickness if thickness and thickness > 0 else None,
        slope=slope,
        intercept=intercept,
        time_key=_key(
            float_value(ds.get("TemporalPositionIdentifier")),
            float_value(ds.get("TriggerTime")),
            _tm_seconds(ds.get("AcquisitionTime")),
            float_value(ds.get("InstanceNumber")),
        ),
        trigger_ms=float_value(ds.get("TriggerTime")),
        load=load,
        header=ds,
        temporal=_key(*(_tm_seconds(ds.get(kw)) if kw == "AcquisitionTime" else float_value(ds.get(kw))
                        for kw in TEMPORAL_KEYWORDS)),
    )


def _group_item(groups: Dataset | None, sequence: str) -> Dataset | None:
    if groups is None or sequence not in groups:
        return None
    seq = groups[sequence].value
    return seq[0] if seq else None


def _frame_loader(arr: np.ndarray, i: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        return arr[i]

    return load


def frames_from_multiframe(ds: Dataset, path: Path, arr: np.ndarray) -> list[Frame]:
    """Frames of an enhanced (functional groups) or legacy multi-frame data set."""
    n = arr.shape[0]
    shared = _group_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) != n:
        raise InputError(f"{path}: {len(per_frame)} per-frame functional groups for {n} frames")

    def lookup(i: int, sequence: str, keyword: str) -> Any:
        for groups in ((per_frame[i] if per_frame is not None else None), shared):
            item = _group_item(groups, sequence)
            if item is not None and keyword in item and item[keyword].value not in (None, ""):
                return item[keyword].value
        return None

    top_iop = stated_values(ds.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", path)
    top_ipp = stated_values(ds.get("ImagePositionPatient"), 3, "ImagePositionPatient", path)
    top_spacing = _pixel_spacing(ds, path)
    top_slope, top_intercept = rescale_of(ds)
    offsets = ds.get("GridFrameOffsetVector")
    offsets_arr = float_values(offsets, n) if offsets is not None else None
    step = float_value(lookup(0, "PixelMeasuresSequence", "SpacingBetweenSlices")) or float_value(
        ds.get("SpacingBetweenSlices")
    )
    thickness = step or float_value(lookup(0, "PixelMeasuresSequence", "SliceThickness")) or float_value(
        ds.get("SliceThickness")
    )
    frames: list[Frame] = []
    derived_positions = False
    for i in range(n):
        where = f"{path} frame {i + 1}"
        iop = stated_values(lookup(i, "PlaneOrientationSequence", "ImageOrientationPatient"), 6,
                            "ImageOrientationPatient", where)
        iop = top_iop if iop is None else iop
        ipp = stated_values(lookup(i, "PlanePositionSequence", "ImagePositionPatient"), 3, "ImagePositionPatient",
                            where)
        spacing = _positive_spacing(stated_values(lookup(i, "PixelMeasuresSequence", "PixelSpacing"), 2,
                                                  "PixelSpacing", where), "PixelSpacing", where)
        spacing = top_spacing if spacing is None else spacing
        iop = None if iop is None else _checked_iop(iop, where)
        if ipp is None and top_ipp is not None and iop is not None:
            # Legacy multi-frame (e.g. NM/RT dose): one position plus offsets along the normal.
            normal = slice_normal(iop)
            if offsets_arr is not None:
                ipp = top_ipp + normal * offsets_arr[i]
            else:
                ipp = top_ipp + normal * i * (thickness or 1.0)
                derived_positions = True
        slope = float_value(lookup(i, "PixelValueTransformationSequence", "RescaleSlope"))
        intercept = float_value(lookup(i, "PixelValueTransformationSequence", "RescaleIntercept"))
        trigger = float_value(lookup(i, "CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime"))
        frames.append(
            Frame(
                source=where,
                rows=arr.shape[1],
                cols=arr.shape[2],
                iop=iop,
                ipp=ipp,
                pixel_spacing=spacing,
                thickness=thickness if thickness and thickness > 0 else None,
                slope=top_slope if slope is None or slope == 0 else slope,
                intercept=top_intercept if intercept is None else intercept,
                time_key=_key(
                    float_value(lookup(i, "FrameContentSequence", "TemporalPositionIndex")),
                    trigger,
                    _tm_seconds(lookup(i, "FrameContentSequence", "FrameAcquisitionDateTime")),
                    float_value(lookup(i, "MREchoSequence", "EffectiveEchoTime")),
                    float(i),
                ),
                trigger_ms=trigger,
                load=_frame_loader(arr, i),
                temporal=(float(i),),
            )
        )
    if derived_positions:
        log.warning(
            "%s: frames carry no positions; assuming consecutive slices %.4g mm apart along the normal",
            path, thickness or 1.0,
        )
    if n > 1 and all(f.iop is None and f.ipp is None for f in frames):
        # A multi-frame file without any patient geometry (secondary capture, exported cine): the file
        # itself orders its frames, so stack them in that order rather than refuse.
        log.warning("%s: multi-frame file without patient geometry; frames stacked in file order, %.4g mm "
                    "apart, axial identity orientation (the frame axis may be time)", path, thickness or 1.0)
        for i, f in enumerate(frames):
            f.iop = np.array(AXIAL_IOP)
            f.ipp = np.array([0.0, 0.0, i * (thickness or 1.0)])
    return frames


def grid_geometry(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """LPS geometry of a voxel grid: (iop (6,), pixel spacing [row, col], k step vector (3,), slice spacing).

    The inverse of :func:`frame_affine`; the slice spacing (mm) is the k step's length along the normal.

    Raises:
        InputError: the in-plane axes are not orthogonal (DICOM cannot store a sheared image plane).
    """
    lps = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)
    ci, cj, ck = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    dx, dy = float(np.linalg.norm(ci)), float(np.linalg.norm(cj))
    row_dir, col_dir = ci / dx, cj / dy
    if abs(float(row_dir @ col_dir)) > 1e-6:
        raise InputError(
            "the volume's in-plane axes are not orthogonal (sheared affine); DICOM cannot store that "
            "geometry, write NIfTI instead"
        )
    iop = np.concatenate([row_dir, col_dir])
    along = float(ck @ slice_normal(iop))
    return iop, np.array([dy, dx]), ck, abs(along)
