"""DICOM <-> :class:`~mrisr.io.volume.Volume`: single files, enhanced multi-frame MR, series folders,
and derived-series output.

Geometry (DICOM PS3.3 C.7.6.2.1.1, written once here):

* A frame's ``pixel_array[r, c]`` becomes ``data[c, r, k]`` (see :mod:`mrisr.io.volume`).
* ``ImageOrientationPatient`` holds the row direction (first three values: the direction in which the
  column index ``c`` grows) and the column direction (last three: ``r`` grows). ``PixelSpacing`` is
  ``[row spacing, column spacing]``: the distance between rows (along the column direction) first.
  So the affine's column ``i`` is ``row_dir * PixelSpacing[1]`` and column ``j`` is
  ``col_dir * PixelSpacing[0]``.
* Slices are ordered by their position along the slice normal ``row_dir x col_dir``
  (``ImagePositionPatient . normal``), never by file name or ``InstanceNumber``; the slice spacing is
  the distance between neighbouring positions (not ``SliceThickness``, which is the excited slab and may
  differ from the spacing when there are gaps or overlaps). The affine's column ``k`` is
  ``normal * spacing``, or the mean step between positions when the stack is sheared.
* The origin is the ``ImagePositionPatient`` (centre of the first transmitted pixel) of the first slice.
* DICOM patient space is LPS+; mrisr's world is RAS+, so the first two rows of the affine are negated.

Frames that share a position form a fourth axis (time, or repeated acquisitions such as echoes), ordered
by ``TemporalPositionIdentifier`` / ``TemporalPositionIndex``, ``TriggerTime``, acquisition time, then
``InstanceNumber``. The writer emits a 4D volume the same way: one file per slice and time point, with
``TemporalPositionIdentifier`` (1-based) and ``TriggerTime`` when ``meta["time_spacing"]`` is known.

Stored values: voxels are ``stored * RescaleSlope + RescaleIntercept`` (per frame) in float32. The
writer stores integers again; see :func:`write_dicom_series` for how the stored range is chosen.
"""

from __future__ import annotations

import copy
import datetime
import gzip
import io
import logging
import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mrisr.errors import InputError, OutputExistsError
from mrisr.io.limits import check_voxel_count
from mrisr.io.messages import one_line
from mrisr.io.volume import LPS_TO_RAS, Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

#: Positions closer than this along the slice normal (mm) are the same slice (DS values carry ~1e-5 mm
#: rounding; real slices are never this close).
SAME_POSITION_MM = 0.01
#: Slice gaps may differ from their median by this fraction (or by ``SAME_POSITION_MM``) before the
#: series counts as unevenly spaced.
SPACING_TOLERANCE = 0.01
#: Tolerance on unit-vector components when comparing / validating ImageOrientationPatient.
ORIENTATION_TOLERANCE = 1e-4
#: Largest gzip-wrapped DICOM decompressed in memory.
_MAX_GZIP_BYTES = 4 * 2**30

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_COLOUR_PHOTOMETRIC = ("RGB", "YBR", "PALETTE", "HSV", "ARGB", "CMYK")
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


# ---------------------------------------------------------------------------------------------------
# Reading datasets
# ---------------------------------------------------------------------------------------------------
@contextmanager
def _pydicom_warnings_to_log() -> Iterator[None]:
    """pydicom warns about many harmless oddities; keep stderr to one line per error (shown with --debug)."""
    pydicom_log = logging.getLogger("pydicom")
    level = pydicom_log.level
    if not log.isEnabledFor(logging.INFO):
        pydicom_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        pydicom_log.setLevel(level)
    for w in caught:
        log.info("pydicom: %s", w.message)


def _open_source(path: Path) -> str | io.BytesIO:
    """The path itself, or the decompressed bytes of a gzip-wrapped DICOM file."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic != b"\x1f\x8b":
        return str(path)
    try:
        with gzip.open(path, "rb") as gz:
            raw = gz.read(_MAX_GZIP_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: corrupt gzip data ({one_line(exc)})") from None
    if len(raw) > _MAX_GZIP_BYTES:
        raise InputError(f"{path}: gzip-wrapped DICOM larger than {_MAX_GZIP_BYTES} bytes")
    return io.BytesIO(raw)


def _looks_like_dicom(ds: Dataset) -> bool:
    return any(kw in ds for kw in ("SOPClassUID", "Rows", "StudyInstanceUID", "SeriesInstanceUID"))


def _dcmread(path: Path, stop_before_pixels: bool = False) -> Dataset:
    """Parse a DICOM file (with or without preamble, optionally gzip-wrapped) into a Dataset.

    Raises:
        InputError: unreadable, not DICOM, or broken beyond parsing.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        src = _open_source(path)
        with _pydicom_warnings_to_log():
            try:
                ds = pydicom.dcmread(src, stop_before_pixels=stop_before_pixels)
            except InvalidDicomError:
                # No 128-byte preamble + "DICM": a raw data set. Accept it only if it parses to something
                # that is recognisably DICOM.
                if isinstance(src, io.BytesIO):
                    src.seek(0)
                ds = pydicom.dcmread(src, stop_before_pixels=stop_before_pixels, force=True)
                if not _looks_like_dicom(ds):
                    raise InputError(f"{path}: not a DICOM file") from None
            # Touch every element so that broken values fail here, as an InputError, not later.
            for _ in ds.iterall():
                pass
    except InputError:
        raise
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # pydicom raises many types (EOFError, ValueError, struct.error, ...)
        raise InputError(f"{path}: cannot parse DICOM (truncated or not DICOM?): {one_line(exc)}") from None
    return ds


def _has_pixels(ds: Dataset) -> bool:
    return any(kw in ds for kw in _PIXEL_KEYWORDS)


def _kind(ds: Dataset) -> str:
    """A short human name for what a data set is, for messages ("RTPLAN", "SR", "MR Image Storage")."""
    if "DirectoryRecordSequence" in ds:
        return "DICOMDIR"
    modality = ds.get("Modality")
    if modality:
        return str(modality)
    sop = ds.get("SOPClassUID") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    if sop is not None:
        name = getattr(sop, "name", "") or str(sop)
        return str(name)
    return "DICOM"


def _is_image_header(ds: Dataset) -> bool:
    """True for data sets that describe an image (header read without pixel data)."""
    if str(ds.get("SOPClassUID", "")) == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        return False
    return "Rows" in ds and "Columns" in ds


def _int(ds: Dataset, keyword: str, default: int, where: Path | str | None = None) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        prefix = f"{where}: " if where is not None else ""
        raise InputError(f"{prefix}invalid {keyword} value {value!r}") from None


def _refuse_mosaic(ds: Dataset, path: Path | str) -> None:
    """Siemens mosaics tile many slices into one image; read as one image their geometry would be wrong."""
    image_type = ds.get("ImageType")
    values = [str(v).upper() for v in (image_type if isinstance(image_type, Sequence) and
                                       not isinstance(image_type, str) else [image_type or ""])]
    if "MOSAIC" in values:
        raise InputError(f"{path}: Siemens mosaic image (several slices tiled in one image); convert the series "
                         "to NIfTI with dcm2niix first, then give mrisr the NIfTI")


def _check_greyscale(ds: Dataset, path: Path | str) -> None:
    """Refuse mosaics and colour images (mrisr needs one greyscale channel)."""
    _refuse_mosaic(ds, path)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = _int(ds, "SamplesPerPixel", 1, path)
    if samples != 1 or photometric.startswith(_COLOUR_PHOTOMETRIC):
        raise InputError(
            f"{path}: colour image ({photometric}, {samples} samples per pixel); "
            "mrisr needs one greyscale channel (MONOCHROME1/2)"
        )


def _check_image_header(ds: Dataset, path: Path | str) -> tuple[int, int, int]:
    """Validate size, channels and (for uncompressed data) pixel-data length before decoding anything.

    Returns:
        ``(rows, columns, frames)``.
    """
    _check_greyscale(ds, path)
    rows = _int(ds, "Rows", 0, path)
    cols = _int(ds, "Columns", 0, path)
    frames = _int(ds, "NumberOfFrames", 1, path)
    check_voxel_count((cols, rows, frames), path)
    if "PixelData" in ds:
        tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        compressed = bool(tsyntax is not None and getattr(tsyntax, "is_compressed", False))
        if not compressed:
            bits = _int(ds, "BitsAllocated", 16, path)
            expected = math.ceil(rows * cols * frames * bits / 8)
            have = len(ds.PixelData or b"")
            if have < expected:
                raise InputError(
                    f"{path}: pixel data is truncated ({have} of {expected} bytes for "
                    f"{frames} frame(s) of {rows}x{cols} at {bits} bits)"
                )
    return rows, cols, frames


def _decode(ds: Dataset, path: Path | str) -> np.ndarray:
    """Stored pixel values (before rescale), shape ``(frames, rows, cols)``."""
    rows, cols, frames = _check_image_header(ds, path)
    try:
        with _pydicom_warnings_to_log():
            arr = np.asarray(ds.pixel_array)
    except MemoryError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot decode pixel data: {one_line(exc)}") from None
    if arr.size != rows * cols * frames:
        raise InputError(f"{path}: decoded {arr.shape} pixels, header says {frames}x{rows}x{cols}")
    return arr.reshape(frames, rows, cols)


def _strip_pixels(ds: Dataset) -> Dataset:
    for kw in _PIXEL_KEYWORDS:
        if kw in ds:
            delattr(ds, kw)
    return ds


# ---------------------------------------------------------------------------------------------------
# Frames and their geometry
# ---------------------------------------------------------------------------------------------------
@dataclass
class _Frame:
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


def _floats(value: Any, n: int) -> np.ndarray | None:
    if value is None or value == "":
        return None
    if isinstance(value, str | bytes):
        value = (value.decode("latin-1") if isinstance(value, bytes) else value).split("\\")
    try:
        arr = np.asarray([float(v) for v in (value if isinstance(value, Sequence | np.ndarray) else [value])])
    except (TypeError, ValueError):
        return None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        return None
    return arr


def _float(value: Any) -> float | None:
    arr = _floats(value, 1)
    return None if arr is None else float(arr[0])


def _checked_iop(iop: np.ndarray, where: str) -> np.ndarray:
    row, col = iop[:3], iop[3:]
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if abs(nr - 1) > 1e-2 or abs(nc - 1) > 1e-2 or abs(float(row @ col)) > 1e-2:
        raise InputError(
            f"{where}: ImageOrientationPatient {iop.round(6).tolist()} is not two orthogonal unit vectors"
        )
    return np.concatenate([row / nr, col / nc])


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


def _rescale_of(ds: Dataset) -> tuple[float, float]:
    slope = _float(ds.get("RescaleSlope"))
    if slope is None:
        # RT dose grids scale their stored integers by DoseGridScaling (Gy) instead of RescaleSlope
        slope = _float(ds.get("DoseGridScaling"))
    intercept = _float(ds.get("RescaleIntercept"))
    return (1.0 if slope is None or slope == 0 else slope), (0.0 if intercept is None else intercept)


def _frame_from_single(ds: Dataset, path: Path, load: Callable[[], np.ndarray]) -> _Frame:
    iop = _floats(ds.get("ImageOrientationPatient"), 6)
    spacing = _floats(ds.get("PixelSpacing"), 2)
    if spacing is None:
        spacing = _floats(ds.get("ImagerPixelSpacing"), 2)
    slope, intercept = _rescale_of(ds)
    thickness = _float(ds.get("SpacingBetweenSlices")) or _float(ds.get("SliceThickness"))
    return _Frame(
        source=str(path),
        rows=_int(ds, "Rows", 0, path),
        cols=_int(ds, "Columns", 0, path),
        iop=None if iop is None else _checked_iop(iop, str(path)),
        ipp=_floats(ds.get("ImagePositionPatient"), 3),
        pixel_spacing=spacing,
        thickness=thickness if thickness and thickness > 0 else None,
        slope=slope,
        intercept=intercept,
        time_key=_key(
            _float(ds.get("TemporalPositionIdentifier")),
            _float(ds.get("TriggerTime")),
            _tm_seconds(ds.get("AcquisitionTime")),
            _float(ds.get("InstanceNumber")),
        ),
        trigger_ms=_float(ds.get("TriggerTime")),
        load=load,
        header=ds,
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


def _frames_from_multiframe(ds: Dataset, path: Path, arr: np.ndarray) -> list[_Frame]:
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

    top_iop = _floats(ds.get("ImageOrientationPatient"), 6)
    top_ipp = _floats(ds.get("ImagePositionPatient"), 3)
    top_spacing = _floats(ds.get("PixelSpacing"), 2)
    top_slope, top_intercept = _rescale_of(ds)
    offsets = ds.get("GridFrameOffsetVector")
    offsets_arr = _floats(offsets, n) if offsets is not None else None
    step = _float(lookup(0, "PixelMeasuresSequence", "SpacingBetweenSlices")) or _float(
        ds.get("SpacingBetweenSlices")
    )
    thickness = step or _float(lookup(0, "PixelMeasuresSequence", "SliceThickness")) or _float(
        ds.get("SliceThickness")
    )
    frames: list[_Frame] = []
    derived_positions = False
    for i in range(n):
        iop = _floats(lookup(i, "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
        iop = top_iop if iop is None else iop
        ipp = _floats(lookup(i, "PlanePositionSequence", "ImagePositionPatient"), 3)
        spacing = _floats(lookup(i, "PixelMeasuresSequence", "PixelSpacing"), 2)
        spacing = top_spacing if spacing is None else spacing
        where = f"{path} frame {i + 1}"
        iop = None if iop is None else _checked_iop(iop, where)
        if ipp is None and top_ipp is not None and iop is not None:
            # Legacy multi-frame (e.g. NM/RT dose): one position plus offsets along the normal.
            normal = np.cross(iop[:3], iop[3:])
            if offsets_arr is not None:
                ipp = top_ipp + normal * offsets_arr[i]
            else:
                ipp = top_ipp + normal * i * (thickness or 1.0)
                derived_positions = True
        slope = _float(lookup(i, "PixelValueTransformationSequence", "RescaleSlope"))
        intercept = _float(lookup(i, "PixelValueTransformationSequence", "RescaleIntercept"))
        trigger = _float(lookup(i, "CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime"))
        frames.append(
            _Frame(
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
                    _float(lookup(i, "FrameContentSequence", "TemporalPositionIndex")),
                    trigger,
                    _tm_seconds(lookup(i, "FrameContentSequence", "FrameAcquisitionDateTime")),
                    _float(lookup(i, "MREchoSequence", "EffectiveEchoTime")),
                    float(i),
                ),
                trigger_ms=trigger,
                load=_frame_loader(arr, i),
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
            f.iop = np.array([1.0, 0, 0, 0, 1.0, 0])
            f.ipp = np.array([0.0, 0.0, i * (thickness or 1.0)])
    return frames


# ---------------------------------------------------------------------------------------------------
# Frames -> Volume
# ---------------------------------------------------------------------------------------------------
def _describe_counts(values: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return ", ".join(f"{k} ({c} image{'s' if c != 1 else ''})" for k, c in counts.items())


def _check_consistent(frames: list[_Frame], what: str) -> None:
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


def _assemble(frames: list[_Frame], what: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
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
    iop = ref.iop if ref.iop is not None else np.array([1.0, 0, 0, 0, 1.0, 0])
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
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
            raise InputError(
                f"{what}: slices are not evenly spaced (gaps between neighbouring positions range from "
                f"{gaps.min():.4g} to {gaps.max():.4g} mm, median {median:.4g} mm): a missing slice, or "
                "stacks with different spacing mixed in one series"
            )
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

    affine = np.eye(4)
    affine[:3, 0] = row_dir * pixel_spacing[1]
    affine[:3, 1] = col_dir * pixel_spacing[0]
    affine[:3, 2] = k_vec
    affine[:3, 3] = ipps[groups[0][0]]
    affine = LPS_TO_RAS @ affine

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


def _base_meta(ds: Dataset, source: Path) -> dict[str, Any]:
    meta: dict[str, Any] = {"format": "dicom", "source": str(source)}
    for key, kw in (("modality", "Modality"), ("series_description", "SeriesDescription"),
                    ("series_uid", "SeriesInstanceUID"), ("patient_id", "PatientID"),
                    ("study_uid", "StudyInstanceUID")):
        value = ds.get(kw)
        if value not in (None, ""):
            meta[key] = str(value)
    return meta


def _finish(data: np.ndarray, affine: np.ndarray, meta: dict[str, Any], extra: dict[str, Any]) -> Volume:
    meta["stored_dtype"] = extra["stored_dtype"]
    meta["rescale"] = extra["rescale"]
    if "time_spacing" in extra:
        meta["time_spacing"] = extra["time_spacing"]
    vol = Volume(data=data, affine=affine, meta=meta)
    vol.check_finite()
    return vol


# ---------------------------------------------------------------------------------------------------
# Public readers
# ---------------------------------------------------------------------------------------------------
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
    ds = _dcmread(path)
    if not _has_pixels(ds):
        if _is_image_header(ds):
            raise InputError(f"{path}: DICOM image header without pixel data (truncated file?)")
        raise InputError(f"{path}: DICOM {_kind(ds)} object without pixel data (not an image)")
    n_frames = _check_image_header(ds, path)[2]
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    arr = _decode(ds, path)
    if n_frames == 1 and not enhanced:
        frames = [_frame_from_single(ds, path, lambda: arr[0])]
    else:
        frames = _frames_from_multiframe(ds, path, arr)
    data, affine, extra = _assemble(frames, str(path))
    meta = _base_meta(ds, path)
    meta["dicom_headers"] = [_strip_pixels(ds)]
    return _finish(data, affine, meta, extra)


def _read_header_if_dicom(path: Path) -> Dataset | None:
    """Header (no pixel data) of a DICOM file, or None for files that are not DICOM."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as gz:
                head = gz.read(132)
        except (OSError, EOFError):
            return None
        if len(head) == 132 and head[128:132] == b"DICM":
            return _dcmread(path, stop_before_pixels=True)
        return None
    if len(head) == 132 and head[128:132] == b"DICM":
        return _dcmread(path, stop_before_pixels=True)
    # Raw data sets (no preamble) usually start with group 0x0008 (or 0x0002) in little endian.
    if head[:2] in (b"\x08\x00", b"\x02\x00"):
        try:
            return _dcmread(path, stop_before_pixels=True)
        except InputError:
            return None
    return None


def _scan_folder(folder: Path) -> tuple[dict[str, list[tuple[Path, Dataset]]], dict[str, int]]:
    """Image headers in ``folder`` (recursively) grouped by SeriesInstanceUID, plus counts of skipped files."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    series: dict[str, list[tuple[Path, Dataset]]] = {}
    skipped: dict[str, int] = {}
    instances: set[str] = set()
    def unreadable(exc: OSError) -> None:
        raise InputError(f"cannot read folder {exc.filename}: {exc.strerror or exc}")

    seen = {os.path.realpath(folder)}
    for root, dirs, files in os.walk(folder, onerror=unreadable, followlinks=True):
        # symlinked sub-folders are followed, each real folder once (no loops)
        kept = []
        for d in sorted(d for d in dirs if not d.startswith(".")):
            real = os.path.realpath(os.path.join(root, d))
            if real not in seen:
                seen.add(real)
                kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            if name.startswith("."):
                continue
            p = Path(root) / name
            ds = _read_header_if_dicom(p)
            if ds is None:
                skipped["not DICOM"] = skipped.get("not DICOM", 0) + 1
                continue
            if not _is_image_header(ds):
                key = f"DICOM {_kind(ds)} without pixel data"
                skipped[key] = skipped.get(key, 0) + 1
                continue
            sop = str(ds.get("SOPInstanceUID", "") or "")
            if sop and sop in instances:
                # the same instance twice (an export copied into a sub-folder, "IM1 (1).dcm"): read it once,
                # or every slice would appear twice and be taken for a second time point
                skipped["duplicate SOPInstanceUID"] = skipped.get("duplicate SOPInstanceUID", 0) + 1
                continue
            if sop:
                instances.add(sop)
            uid = str(ds.get("SeriesInstanceUID", "") or "")
            series.setdefault(uid, []).append((p, ds))
    if skipped.get("duplicate SOPInstanceUID"):
        log.warning("%s: %d file(s) repeat an instance already found (same SOPInstanceUID); each read once",
                    folder, skipped["duplicate SOPInstanceUID"])
    return series, skipped


def find_series(folder: str | Path) -> dict[str, list[Path]]:
    """DICOM image files under ``folder`` (recursively), grouped by SeriesInstanceUID.

    Files that are not DICOM, and DICOM objects that are not images (DICOMDIR, SR, RT plans...) are
    ignored, and so are repeats of an instance (same SOPInstanceUID) after its first file. Files without a
    SeriesInstanceUID are grouped under ``""``.
    """
    series, _ = _scan_folder(Path(folder))
    return {uid: [p for p, _ in items] for uid, items in series.items()}


def reference_header(path: str | Path) -> Dataset:
    """The header (no pixel data) of a DICOM file, or of the first file of the one series in a folder.

    Used to write a derived series into the patient, study and frame of reference of an existing scan
    when the voxels come from a format without DICOM headers (``mrisr convert x.nii out/ --like SCAN``).

    Raises:
        InputError: not DICOM, no images, or a folder holding several series.
    """
    p = Path(path)
    if p.is_dir():
        found, _ = _scan_folder(p)
        if not found:
            raise InputError(f"{p}: no DICOM images found to take headers from")
        if len(found) > 1:
            raise InputError(f"{p} holds {len(found)} DICOM series; give one file or a folder holding one series: "
                             f"{_series_listing(found)}")
        return next(iter(found.values()))[0][1]
    if not p.is_file():
        raise InputError(f"{p}: no such file or folder")
    ds = _dcmread(p, stop_before_pixels=True)
    if not _is_image_header(ds):
        raise InputError(f"{p}: DICOM {_kind(ds)} object is not an image; give a file of the scan's series")
    return _strip_pixels(ds)


def _series_label(uid: str, items: list[tuple[Path, Dataset]]) -> str:
    ds = items[0][1]
    desc = str(ds.get("SeriesDescription", "") or "").strip()
    number = ds.get("SeriesNumber")
    parts = [uid or "(no SeriesInstanceUID)"]
    if number not in (None, ""):
        parts.append(f"#{number}")
    parts.append(f"'{desc}'" if desc else "(no description)")
    n = len(items)
    parts.append(f"({n} file{'s' if n != 1 else ''})")
    return " ".join(parts)


def _series_listing(series: dict[str, list[tuple[Path, Dataset]]]) -> str:
    def sort_key(uid: str) -> tuple[float, str]:
        number = _float(series[uid][0][1].get("SeriesNumber"))
        return (math.inf if number is None else number, uid)

    return "; ".join(_series_label(uid, series[uid]) for uid in sorted(series, key=sort_key))


def read_dicom_folder(path: str | Path, series: str | None = None) -> Volume:
    """Read the DICOM series in a folder (searched recursively) as one volume.

    Slices are sorted by position along the slice normal; frames sharing a position become the time
    axis (see the module docstring). A folder whose only image is one (multi-frame) file reads like
    :func:`read_dicom_file`.

    Args:
        path: folder.
        series: SeriesInstanceUID to read when the folder holds several series.

    Returns:
        Volume ``(Columns, Rows, slices[, time])``; ``meta["dicom_headers"]`` holds one header per slice
        (pixel data removed) in ``k`` order (for 4D: those of the first time point).

    Raises:
        InputError: no images, several series and no ``series``, unknown ``series``, mixed sizes,
            orientations or pixel spacings, uneven slice spacing, broken files.
    """
    folder = Path(path)
    found, skipped = _scan_folder(folder)
    if not found:
        looked = sum(skipped.values())
        detail = ", ".join(f"{n} {kind}" for kind, n in skipped.items())
        hint = ""
        if skipped.get("not DICOM"):
            hint = "; a folder is read as one DICOM series: give NIfTI, PNG, TIFF or NPY files one at a time"
        raise InputError(
            f"{folder}: no DICOM images found"
            + (f" ({looked} file(s) looked at: {detail})" if looked else " (empty folder)") + hint
        )
    if series is None:
        if len(found) > 1:
            raise InputError(
                f"{folder} holds {len(found)} DICOM series; pick one with --series UID: {_series_listing(found)}"
            )
        uid = next(iter(found))
    else:
        if series not in found:
            raise InputError(f"series {series} is not in {folder}; it holds: {_series_listing(found)}")
        uid = series
    items = found[uid]
    what = f"{folder} series {uid}" if len(found) > 1 or series else str(folder)

    multi = [p for p, ds in items if _int(ds, "NumberOfFrames", 1, p) > 1
             or "PerFrameFunctionalGroupsSequence" in ds]
    if multi:
        if len(items) == 1:
            vol = read_dicom_file(items[0][0])
            return vol.with_data(vol.data, source=str(folder))
        raise InputError(
            f"{what}: holds {len(multi)} multi-frame file(s) among {len(items)} files; read them one at a time"
        )

    # Refuse absurd totals from the headers before decoding anything.
    rows = _int(items[0][1], "Rows", 0, what)
    cols = _int(items[0][1], "Columns", 0, what)
    check_voxel_count((cols, rows, len(items)), what)

    def loader(p: Path) -> Callable[[], np.ndarray]:
        def load() -> np.ndarray:
            ds = _dcmread(p)
            if not _has_pixels(ds):
                raise InputError(f"{p}: DICOM image header without pixel data (truncated file?)")
            return _decode(ds, p)[0]

        return load

    frames = []
    for p, ds in items:
        _check_header_sizes(ds, p)
        frames.append(_frame_from_single(ds, p, loader(p)))
    data, affine, extra = _assemble(frames, what)
    first = frames[extra["order"][0][0]].header
    assert first is not None
    meta = _base_meta(first, folder)
    meta["dicom_headers"] = [frames[g[0]].header for g in extra["order"]]
    meta["n_files"] = len(items)
    return _finish(data, affine, meta, extra)


def _check_header_sizes(ds: Dataset, path: Path) -> None:
    """Channel and size checks on a header read without pixel data."""
    _check_greyscale(ds, path)
    check_voxel_count((_int(ds, "Columns", 0, path), _int(ds, "Rows", 0, path), _int(ds, "NumberOfFrames", 1, path)), path)


# ---------------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------------
#: Attributes copied from the source header: patient, study, equipment, frame of reference and MR
#: acquisition parameters. Everything image-specific is recomputed; everything else is dropped.
_KEPT_ATTRIBUTES = (
    "SpecificCharacterSet",
    # patient
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "PatientSize", "PatientWeight", "PatientIdentityRemoved", "DeidentificationMethod",
    # study
    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "StudyDescription",
    "ReferringPhysicianName",
    # series / frame of reference (same patient coordinates: the geometry is preserved)
    "Modality", "FrameOfReferenceUID", "PositionReferenceIndicator", "BodyPartExamined",
    "PatientPosition", "Laterality", "ProtocolName",
    # equipment
    "Manufacturer", "InstitutionName", "InstitutionAddress", "StationName", "ManufacturerModelName",
    "DeviceSerialNumber", "SoftwareVersions",
    # MR acquisition
    "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "SequenceName",
    "RepetitionTime", "EchoTime", "InversionTime", "EchoTrainLength", "FlipAngle", "MagneticFieldStrength",
    "ImagingFrequency", "ImagedNucleus", "NumberOfAverages", "ReceiveCoilName", "TransmitCoilName",
    "AcquisitionContrast",
    # display
    "PhotometricInterpretation",
)

_MR_DEFAULTS: dict[str, Any] = {
    "PatientName": "",
    "PatientID": "",
    "PatientBirthDate": "",
    "PatientSex": "",
    "StudyID": "",
    "AccessionNumber": "",
    "ReferringPhysicianName": "",
    "PositionReferenceIndicator": "",
    "Manufacturer": "",
    "ScanningSequence": "RM",
    "SequenceVariant": "NONE",
    "ScanOptions": "",
    "MRAcquisitionType": "",
    "RepetitionTime": "",
    "EchoTime": "",
    "EchoTrainLength": "",
    "PhotometricInterpretation": "MONOCHROME2",
}

_SR_SUFFIX = re.compile(r"\s*\[mrisr[^\]]*\]\s*$")


def _ds(values: Sequence[float] | np.ndarray | float) -> Any:
    from pydicom.valuerep import DSfloat

    if isinstance(values, Sequence | np.ndarray):
        return [DSfloat(float(v) + 0.0, auto_format=True) for v in values]
    return DSfloat(float(values) + 0.0, auto_format=True)


def _scale_text(factors: Any) -> str:
    try:
        f = [float(x) for x in (factors if isinstance(factors, Sequence | np.ndarray) else [factors])]
    except (TypeError, ValueError):
        return ""
    fmt = [f"{x:g}" for x in f]
    non_unit = sorted({x for x in fmt if x != "1"})
    if len(non_unit) == 1:
        return f" x{non_unit[0]}"
    if fmt and not non_unit:
        return " x1"  # a same-grid model (denoising / restoration)
    return " x" + "x".join(fmt) if fmt else ""


def series_suffix(meta: dict[str, Any]) -> str:
    """Suffix marking a derived series: ``" [mrisr SR x2]"`` after an upscaling, otherwise ``" [mrisr]"``.

    An upscaling is a ``meta["history"]`` entry with ``"op"`` in ``("upscale", "super-resolve", "sr")``
    (or, without ``"op"``, one naming a ``"model"``); its ``"scale"`` / ``"factors"`` give the factor.
    """
    for entry in reversed(list(meta.get("history") or [])):
        if not isinstance(entry, dict):
            continue
        op = str(entry.get("op", "")).lower()
        if op in ("upscale", "super-resolve", "super-resolution", "sr") or (not op and "model" in entry):
            factor = entry.get("scale", entry.get("factors", entry.get("factor")))
            return f" [mrisr SR{_scale_text(factor) if factor is not None else ''}]"
    return " [mrisr]"


def _storage(data: np.ndarray, src: Dataset | None, src_rescale: Any) -> tuple[np.ndarray, float, float, int, int]:
    """Choose integer storage for float voxels.

    Order of preference:
      1. the source's stored type and rescale (voxels rounded to the source's quantisation), when all
         values fit and the range keeps at least 256 distinct levels (a normalised [0, 1] image written
         with a slope of 1 would collapse to two grey levels);
      2. the same rescale in the other signedness or 16 bits;
      3. integer-valued data without a source: slope 1, intercept 0, uint16/int16;
      4. otherwise a new slope/intercept mapping [min, max] onto the full uint16 range (no clipping).

    Returns:
        ``(stored, slope, intercept, bits_stored, pixel_representation)`` with ``stored`` an integer array.
    """
    lo, hi = float(data.min()), float(data.max())
    candidates: list[tuple[float, float, int, int]] = []  # slope, intercept, bits, signed
    if src is not None:
        slope, intercept = (1.0, 0.0)
        if isinstance(src_rescale, tuple | list) and len(src_rescale) == 2:
            slope, intercept = float(src_rescale[0]), float(src_rescale[1])
        else:
            slope, intercept = _rescale_of(src)
        bits = _int(src, "BitsAllocated", 16)
        signed = _int(src, "PixelRepresentation", 0)
        enough_levels = hi == lo or (hi - lo) / abs(slope) >= 255
        if enough_levels:
            options = ((bits, signed), (bits, 1 - signed), (16, 0), (16, 1)) if bits in (8, 16) else ((16, 0), (16, 1))
            for b, s in options:
                if (slope, intercept, b, s) not in candidates:
                    candidates.append((slope, intercept, b, s))
    if np.all(data == np.round(data)):
        candidates += [(1.0, 0.0, 16, 0), (1.0, 0.0, 16, 1)]
    for slope, intercept, bits, signed in candidates:
        stored = np.rint((data.astype(np.float64) - intercept) / slope)
        bits_stored = bits
        if src is not None and bits == _int(src, "BitsAllocated", 16):
            bits_stored = min(bits, _int(src, "BitsStored", bits))
        for bs in (bits_stored, bits):
            smin, smax = (-(2 ** (bs - 1)), 2 ** (bs - 1) - 1) if signed else (0, 2**bs - 1)
            if stored.min() >= smin and stored.max() <= smax:
                dtype = {(8, 0): np.uint8, (8, 1): np.int8, (16, 0): np.uint16, (16, 1): np.int16}[(bits, signed)]
                return stored.astype(dtype), slope, intercept, bs, signed
    slope = (hi - lo) / 65535.0 if hi > lo else 1.0
    stored = np.clip(np.rint((data.astype(np.float64) - lo) / slope), 0, 65535)
    return stored.astype(np.uint16), slope, lo, 16, 0


def _source_header(meta: dict[str, Any]) -> Dataset | None:
    from pydicom.dataset import Dataset

    headers = meta.get("dicom_headers")
    if isinstance(headers, Sequence) and headers and isinstance(headers[0], Dataset):
        return headers[0]
    return None


def _grid_geometry(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """LPS geometry of a voxel grid: (iop (6,), pixel spacing [row, col], k step vector (3,), slice spacing)."""
    lps = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)
    ci, cj, ck = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    dx, dy = float(np.linalg.norm(ci)), float(np.linalg.norm(cj))
    row_dir, col_dir = ci / dx, cj / dy
    if abs(float(row_dir @ col_dir)) > 1e-6:
        raise InputError(
            "the volume's in-plane axes are not orthogonal (sheared affine); DICOM cannot store that "
            "geometry, write NIfTI instead"
        )
    normal = np.cross(row_dir, col_dir)
    along = float(ck @ normal)
    return np.concatenate([row_dir, col_dir]), np.array([dy, dx]), ck, abs(along)


def _slice_thickness(volume: Volume, slice_spacing: float) -> float:
    """SliceThickness (mm): the profile of a simulated thick-slice acquisition when that is the last
    thing done along the slice axis (k), else the slice spacing."""
    for entry in reversed(volume.meta.get("history") or []):
        if not isinstance(entry, dict):
            continue
        if entry.get("op") == "upscale":
            break
        if entry.get("method") == "slice" and entry.get("axis") == 2 and entry.get("thickness_mm"):
            return float(entry["thickness_mm"])
    return slice_spacing


def write_dicom_series(volume: Volume, folder: str | Path) -> None:
    """Write ``volume`` as a derived MR series: one single-frame file per slice (and time point).

    Headers: patient, study, equipment, frame of reference and MR acquisition attributes come from
    ``volume.meta["dicom_headers"][0]`` when present; otherwise minimal valid MR Image Storage headers
    are built. New SeriesInstanceUID and SOPInstanceUIDs; ImageType ``DERIVED\\SECONDARY``;
    SeriesDescription gets :func:`series_suffix`. Rows/Columns, PixelSpacing, SliceThickness,
    SpacingBetweenSlices, ImagePositionPatient and ImageOrientationPatient are recomputed from the affine
    (RAS -> LPS). Pixel values are integers chosen by :func:`_storage` (the source's stored type and
    rescale when they hold the data). 4D volumes become one series whose files carry
    ``TemporalPositionIdentifier`` (and ``TriggerTime`` from ``meta["time_spacing"]``).

    A volume with a left-handed affine is written faithfully, but reads back with ``k`` reversed
    (readers sort slices along ``row x column``); the world position of every voxel is unchanged.

    Raises:
        OutputExistsError: ``folder`` exists and is not empty.
        InputError: NaN/Inf voxels or a sheared in-plane grid.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, MRImageStorage, generate_uid

    from mrisr import __version__

    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputExistsError(f"{folder} exists and is not an empty folder")
    volume.check_finite()
    data = volume.data
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim == 3:
        data = data[..., None]
    n_x, n_y, n_z, n_t = data.shape
    iop, pixel_spacing, k_step, slice_spacing = _grid_geometry(volume.affine)
    origin_lps = (LPS_TO_RAS @ volume.affine)[:3, 3]
    normal = np.cross(iop[:3], iop[3:])

    src = _source_header(volume.meta)
    stored, slope, intercept, bits_stored, signed = _storage(data, src, volume.meta.get("rescale"))
    bits_alloc = stored.dtype.itemsize * 8

    now = datetime.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
    series_uid = generate_uid()
    base = Dataset()
    for kw, value in _MR_DEFAULTS.items():
        setattr(base, kw, value)
    if src is not None:
        for kw in _KEPT_ATTRIBUTES:
            if kw in src:
                base[kw] = copy.deepcopy(src[kw])
    else:
        base.StudyInstanceUID = generate_uid()
        base.FrameOfReferenceUID = generate_uid()
        base.StudyDate, base.StudyTime = date, time
        if volume.meta.get("patient_id"):
            base.PatientID = str(volume.meta["patient_id"])
    if "StudyInstanceUID" not in base:
        base.StudyInstanceUID = generate_uid()
    if "FrameOfReferenceUID" not in base:
        base.FrameOfReferenceUID = generate_uid()
    if str(base.get("PhotometricInterpretation", "")) not in ("MONOCHROME1", "MONOCHROME2"):
        base.PhotometricInterpretation = "MONOCHROME2"
    base.Modality = str(volume.meta.get("modality") or base.get("Modality") or "MR")
    base.SOPClassUID = MRImageStorage
    base.ImageType = ["DERIVED", "SECONDARY"]
    description = str(volume.meta.get("series_description") or (src.get("SeriesDescription", "") if src else ""))
    suffix = series_suffix(volume.meta)
    description = _SR_SUFFIX.sub("", description)
    base.SeriesDescription = (description[: 64 - len(suffix)] + suffix).strip()
    base.DerivationDescription = f"written by mrisr {__version__}" + (
        f" ({suffix.strip(' []')})" if "SR" in suffix else ""
    )
    if "SpecificCharacterSet" not in base and not all(
            str(el.value).isascii() for el in base if el.VR in ("LO", "SH", "PN", "LT", "ST", "UT", "UC")):
        # text that is not ASCII (from NIfTI descriptions or meta) needs a declared character set
        base.SpecificCharacterSet = "ISO_IR 192"
    source_number = _float(src.get("SeriesNumber")) if src is not None else None
    base.SeriesNumber = int(source_number) + 1000 if source_number is not None else 1000
    base.SeriesInstanceUID = series_uid
    base.SeriesDate, base.SeriesTime = date, time
    base.ContentDate, base.ContentTime = date, time
    base.InstanceCreationDate, base.InstanceCreationTime = date, time
    base.SamplesPerPixel = 1
    base.Rows, base.Columns = n_y, n_x
    base.PixelSpacing = _ds(pixel_spacing)
    base.SliceThickness = _ds(_slice_thickness(volume, slice_spacing))
    base.SpacingBetweenSlices = _ds(slice_spacing)
    base.ImageOrientationPatient = _ds(iop)
    base.BitsAllocated = bits_alloc
    base.BitsStored = bits_stored
    base.HighBit = bits_stored - 1
    base.PixelRepresentation = signed
    if slope != 1.0 or intercept != 0.0:
        base.RescaleSlope = _ds(slope)
        base.RescaleIntercept = _ds(intercept)
        base.RescaleType = "US"
    lo, hi = float(data.min()), float(data.max())
    base.WindowCenter = _ds((lo + hi) / 2)
    base.WindowWidth = _ds(max(hi - lo, 1e-3))
    if n_t > 1:
        base.NumberOfTemporalPositions = n_t
    time_spacing = volume.meta.get("time_spacing")

    folder.mkdir(parents=True, exist_ok=True)
    for t in range(n_t):
        for k in range(n_z):
            ds = copy.deepcopy(base)
            number = t * n_z + k + 1
            sop_uid = generate_uid()
            ds.SOPInstanceUID = sop_uid
            ds.InstanceNumber = number
            ipp = origin_lps + k * k_step
            ds.ImagePositionPatient = _ds(ipp)
            ds.SliceLocation = _ds(float(ipp @ normal))
            if n_t > 1:
                ds.TemporalPositionIdentifier = t + 1
                if time_spacing:
                    ds.TriggerTime = _ds(t * float(time_spacing) * 1000.0)
            ds.PixelData = np.ascontiguousarray(stored[:, :, k, t].T).astype(stored.dtype.newbyteorder("<")).tobytes()
            fm = FileMetaDataset()
            fm.MediaStorageSOPClassUID = MRImageStorage
            fm.MediaStorageSOPInstanceUID = sop_uid
            fm.TransferSyntaxUID = ExplicitVRLittleEndian
            fm.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            fm.ImplementationVersionName = f"MRISR_{__version__}"[:16]
            ds.file_meta = fm
            with _pydicom_warnings_to_log():
                ds.save_as(folder / f"IM{number:05d}.dcm", enforce_file_format=True)


__all__ = [
    "find_series",
    "read_dicom_file",
    "read_dicom_folder",
    "reference_header",
    "series_suffix",
    "write_dicom_series",
]
