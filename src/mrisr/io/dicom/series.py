"""Series assembly: frames -> one :class:`~mrisr.io.volume.Volume` (3D, or 4D with a time axis).

* Slices are ordered by their position along the slice normal ``row_dir x col_dir``
  (``ImagePositionPatient . normal``), never by file name or ``InstanceNumber``; the slice spacing is
  the distance between neighbouring positions (not ``SliceThickness``, which is the excited slab and may
  differ from the spacing when there are gaps or overlaps). The affine's column ``k`` is
  ``normal * spacing``, or the mean step between positions when the stack is sheared. Uneven gaps (the
  error names the first one and its two files), mixed sizes, orientations or pixel spacings are refused.
* Frames that share a position form a fourth axis (time, or repeated acquisitions such as echoes),
  ordered by ``TemporalPositionIdentifier`` / ``TemporalPositionIndex``, ``TriggerTime``, acquisition
  time, then ``InstanceNumber``. Images at one position that no temporal attribute tells apart
  (:data:`~mrisr.io.dicom.geometry.TEMPORAL_KEYWORDS`: copied files, or every slice claiming one
  position) are refused, never read as time points.

How one frame's position and orientation become the affine is in :mod:`mrisr.io.dicom.geometry`.
:func:`read_dicom_file` reads one (possibly multi-frame) file this way; folders are in
:mod:`mrisr.io.dicom.scanning`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mrisr.errors import InputError
from mrisr.io.dicom.geometry import (
    AXIAL_IOP,
    ORIENTATION_TOLERANCE,
    TEMPORAL_KEYWORDS,
    Frame,
    frame_affine,
    frame_from_single,
    frames_from_multiframe,
    slice_normal,
)
from mrisr.io.dicom.reading import check_image_header, dcmread, decode, require_pixels, strip_pixels
from mrisr.io.limits import check_voxel_count
from mrisr.io.messages import holding_warnings
from mrisr.io.volume import Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

#: Positions closer than this along the slice normal (mm) are the same slice (DS values carry ~1e-5 mm
#: rounding; real slices are never this close).
SAME_POSITION_MM = 0.01
#: Slice gaps may differ from their median by this fraction (or by ``SAME_POSITION_MM``) before the
#: series counts as unevenly spaced.
SPACING_TOLERANCE = 0.01


def _describe_counts(values: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return ", ".join(f"{k} ({c} image{'s' if c != 1 else ''})" for k, c in counts.items())


def _check_consistent(frames: list[Frame], what: str) -> None:
    sizes = [f"{f.rows}x{f.cols}" for f in frames]
    if len(set(sizes)) > 1:
        raise InputError(f"{what} mixes image sizes (rows x columns): {_describe_counts(sizes)}")
    ref = frames[0]
    if any((f.iop is None) != (ref.iop is None) for f in frames):
        raise InputError(f"{what}: some images have ImageOrientationPatient and some do not")
    if ref.iop is not None:
        distinct: list[np.ndarray] = []
        for f in frames:
            assert f.iop is not None
            if not any(np.allclose(f.iop, d, atol=ORIENTATION_TOLERANCE * 10) for d in distinct):
                distinct.append(f.iop)
        if len(distinct) > 1:
            shown = "; ".join(str(np.round(d, 4).tolist()) for d in distinct[:4])
            raise InputError(
                f"{what} mixes {len(distinct)} image orientations ({shown}{'; ...' if len(distinct) > 4 else ''}) "
                "so it is not one 3D volume (a localizer or projection series?); read single files instead"
            )
    spacings = [None if f.pixel_spacing is None else tuple(np.round(f.pixel_spacing, 6)) for f in frames]
    ref_sp = frames[0].pixel_spacing
    for f in frames:
        same = (f.pixel_spacing is None and ref_sp is None) or (
            f.pixel_spacing is not None and ref_sp is not None
            and np.allclose(f.pixel_spacing, ref_sp, rtol=1e-4, atol=1e-6)
        )
        if not same:
            raise InputError(f"{what} mixes pixel spacings: {_describe_counts([str(s) for s in spacings])}")


def _refuse_duplicates(frames: list[Frame], groups: list[list[int]], pos: np.ndarray, what: str) -> None:
    """Refuse images that share a slice position and that nothing temporal tells apart (copied files,
    or a series whose every slice claims one position): they are not time points."""
    for g in groups:
        keys = [frames[i].temporal for i in g]
        if len(set(keys)) < len(keys):
            dup = next(i for i in g if keys.count(frames[i].temporal) > 1)
            other = next(i for i in g if i != dup and frames[i].temporal == frames[dup].temporal)
            raise InputError(
                f"{what}: {len(g)} images share the slice position {pos[g[0]]:.4g} mm along the normal (e.g. "
                f"{frames[dup].source} and {frames[other].source}) and no {'/'.join(TEMPORAL_KEYWORDS)} tells "
                "them apart: duplicated files or wrong ImagePositionPatient, not time points"
            )


def _refuse_gap(frames: list[Frame], groups: list[list[int]], group_pos: np.ndarray, median: float, tol: float,
                what: str) -> None:
    """Refuse uneven slice spacing, naming the first gap that differs from the median and its two slices."""
    gaps = np.diff(group_pos)
    i = int(np.argmax(np.abs(gaps - median) > tol))
    ratio = gaps[i] / median if median > 0 else 0.0
    missing = round(ratio) - 1
    kind = (f"{missing} missing slice{'s' if missing != 1 else ''}?" if missing >= 1 and abs(ratio - round(ratio)) < 0.1
            else "stacks with different spacing mixed in one series?")
    raise InputError(
        f"{what}: slices are not evenly spaced (gaps between neighbouring positions range from {gaps.min():.4g} "
        f"to {gaps.max():.4g} mm, median {median:.4g} mm): the gap between {frames[groups[i][0]].source} and "
        f"{frames[groups[i + 1][0]].source} (at {group_pos[i]:.4g} and {group_pos[i + 1]:.4g} mm along the "
        f"normal) is {gaps[i]:.4g} mm ({kind})"
    )


def assemble_frames(frames: list[Frame], what: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Sort frames into ``(X, Y, Z[, T])`` float32 voxels and a RAS affine.

    Returns:
        ``(data, affine, extra_meta)``; ``extra_meta`` holds ``order`` (frame indices in
        ``[k][t]`` order), ``rescale`` and optionally ``time_spacing``.
    """
    if not frames:
        raise InputError(f"{what}: no images")
    _check_consistent(frames, what)
    ref = frames[0]
    rows, cols = ref.rows, ref.cols
    missing_geometry = ref.iop is None or any(f.ipp is None for f in frames)
    if missing_geometry and len(frames) > 1:
        raise InputError(
            f"{what}: images carry no ImagePositionPatient/ImageOrientationPatient, so their order and "
            "spacing are unknown (mrisr does not guess from file names or InstanceNumber)"
        )
    if ref.pixel_spacing is None:
        log.warning("%s: no PixelSpacing; assuming 1 mm pixels", what)
    pixel_spacing = ref.pixel_spacing if ref.pixel_spacing is not None else np.ones(2)
    if ref.iop is None:
        log.warning("%s: no patient geometry (ImageOrientationPatient); using an axial identity orientation", what)
    iop = ref.iop if ref.iop is not None else np.array(AXIAL_IOP)
    normal = slice_normal(iop)
    ipps = np.array([f.ipp if f.ipp is not None else np.zeros(3) for f in frames])
    pos = ipps @ normal

    # Group frames that share a position (time points / repetitions), then order within each group.
    order = np.argsort(pos, kind="stable")
    groups: list[list[int]] = []
    for idx in order:
        if groups and abs(pos[idx] - pos[groups[-1][0]]) < SAME_POSITION_MM:
            groups[-1].append(int(idx))
        else:
            groups.append([int(idx)])
    counts = {len(g) for g in groups}
    if len(counts) > 1:
        raise InputError(
            f"{what}: slice positions hold different numbers of images ({min(counts)} to {max(counts)}); "
            "duplicated or missing files, or several acquisitions mixed in one series"
        )
    _refuse_duplicates(frames, groups, pos, what)
    n_t = counts.pop()
    for g in groups:
        g.sort(key=lambda i: (frames[i].time_key, frames[i].source))
    n_z = len(groups)
    check_voxel_count((cols, rows, n_z, n_t), what)

    group_pos = np.array([pos[g[0]] for g in groups])
    if n_z > 1:
        gaps = np.diff(group_pos)
        median = float(np.median(gaps))
        tol = max(SAME_POSITION_MM, SPACING_TOLERANCE * median)
        if np.any(np.abs(gaps - median) > tol):
            _refuse_gap(frames, groups, group_pos, median, tol, what)
        step = (ipps[groups[-1][0]] - ipps[groups[0][0]]) / (n_z - 1)
        along = float(step @ normal)
        in_plane = step - along * normal
        if np.linalg.norm(in_plane) > SAME_POSITION_MM + 1e-3 * abs(along):
            log.warning(
                "%s: slice positions drift within the image plane by %.4g mm per slice (sheared stack); "
                "the affine keeps the shear", what, float(np.linalg.norm(in_plane)),
            )
            k_vec = step
        else:
            k_vec = normal * along
    else:
        thickness = ref.thickness
        if thickness is None:
            log.info("%s: single slice without SliceThickness; assuming 1 mm", what)
        k_vec = normal * (thickness or 1.0)

    if len(frames) == 1 and ref.iop is not None and ref.ipp is None:
        log.warning("%s: no ImagePositionPatient; the image's centre of the first pixel is put at the origin", what)
    affine = frame_affine(iop, pixel_spacing, k_vec, ipps[groups[0][0]])

    data = np.empty((cols, rows, n_z, n_t), dtype=np.float32)
    stored_dtype = None
    for k, g in enumerate(groups):
        for t, idx in enumerate(g):
            f = frames[idx]
            stored = np.asarray(f.load())
            if stored.shape != (rows, cols):
                raise InputError(f"{f.source}: decoded {stored.shape} pixels, expected {rows}x{cols}")
            stored_dtype = stored_dtype or str(stored.dtype)
            if f.slope == 1.0 and f.intercept == 0.0:
                data[:, :, k, t] = stored.T
            else:
                data[:, :, k, t] = stored.T.astype(np.float64) * f.slope + f.intercept
    if n_t == 1:
        data = data[..., 0]

    extra: dict[str, Any] = {"order": [list(g) for g in groups], "stored_dtype": stored_dtype}
    rescales = {(f.slope, f.intercept) for f in frames}
    extra["rescale"] = rescales.pop() if len(rescales) == 1 else None
    if n_t > 1:
        triggers = [frames[i].trigger_ms for i in groups[0]]
        if all(t is not None for t in triggers):
            diffs = np.diff(np.asarray(triggers, dtype=np.float64))
            if np.all(diffs > 0):
                extra["time_spacing"] = float(np.median(diffs)) / 1000.0
    return data, affine, extra


def base_meta(ds: Dataset, source: Path) -> dict[str, Any]:
    """``meta`` of a volume read from ``source``: format, source, and the series' identifying attributes."""
    meta: dict[str, Any] = {"format": "dicom", "source": str(source)}
    for key, kw in (("modality", "Modality"), ("series_description", "SeriesDescription"),
                    ("series_uid", "SeriesInstanceUID"), ("patient_id", "PatientID"),
                    ("study_uid", "StudyInstanceUID")):
        value = ds.get(kw)
        if value not in (None, ""):
            meta[key] = str(value)
    return meta


def finish_volume(data: np.ndarray, affine: np.ndarray, meta: dict[str, Any], extra: dict[str, Any]) -> Volume:
    """The :class:`Volume` of :func:`assemble_frames`' output, its ``extra`` merged into ``meta``.

    Raises:
        InputError: NaN or Inf voxels.
    """
    meta["stored_dtype"] = extra["stored_dtype"]
    meta["rescale"] = extra["rescale"]
    if "time_spacing" in extra:
        meta["time_spacing"] = extra["time_spacing"]
    vol = Volume(data=data, affine=affine, meta=meta)
    vol.check_finite()
    return vol


@holding_warnings
def read_dicom_file(path: str | Path) -> Volume:
    """Read one DICOM file: a single frame (a 3D volume with one slice) or a multi-frame file.

    Multi-frame files use the per-frame functional groups (``PlanePositionSequence``,
    ``PlaneOrientationSequence``, ``PixelMeasuresSequence``, ``PixelValueTransformationSequence``),
    falling back to the shared groups and then to top-level attributes (legacy multi-frame; with
    ``GridFrameOffsetVector`` when present). Frames are ordered like a series folder.

    Returns:
        Volume of shape ``(Columns, Rows, slices[, time])``; ``meta["dicom_headers"]`` is a one-element
        list holding the file's header without pixel data.

    Raises:
        InputError: not DICOM, no pixel data, colour, truncated, absurd size, inconsistent geometry.
    """
    path = Path(path)
    ds = dcmread(path)
    require_pixels(ds, path)
    n_frames = check_image_header(ds, path)[2]
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    arr = decode(ds, path)
    if n_frames == 1 and not enhanced:
        frames = [frame_from_single(ds, path, lambda: arr[0])]
    else:
        frames = frames_from_multiframe(ds, path, arr)
    data, affine, extra = assemble_frames(frames, str(path))
    meta = base_meta(ds, path)
    meta["dicom_headers"] = [strip_pixels(ds)]
    return finish_volume(data, affine, meta, extra)
