"""Reading DICOM files: parsing (preamble or raw, gzip-wrapped), header checks, pixel decoding, rescale.

A file becomes a pydicom ``Dataset`` through :func:`dcmread`, which turns every parsing failure into one
:class:`~mrisr.errors.InputError` line. Pixel data is decoded by pydicom (any transfer syntax its
handlers support) after :func:`check_image_header` has refused colour images, Siemens mosaics, absurd
sizes and truncated uncompressed pixel data.

Stored values: voxels are ``stored * RescaleSlope + RescaleIntercept`` (per frame, see
:func:`rescale_of`; RT dose grids use ``DoseGridScaling``) in float32.

pydicom is imported inside the functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import gzip
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mrisr.errors import InputError
from mrisr.io.limits import check_voxel_count
from mrisr.io.messages import held_warnings, one_line

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: Largest gzip-wrapped DICOM decompressed in memory.
_MAX_GZIP_BYTES = 4 * 2**30

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_COLOUR_PHOTOMETRIC = ("RGB", "YBR", "PALETTE", "HSV", "ARGB", "CMYK")
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


#: pydicom warns (and logs, with tracebacks from its pixel decoders) about many harmless oddities; these are
#: held and shown with ``--debug`` only (:func:`mrisr.io.messages.held_warnings`), so stderr keeps one line
#: per error.
pydicom_warnings_to_log = held_warnings


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


def dcmread(path: Path, stop_before_pixels: bool = False) -> Dataset:
    """Parse a DICOM file (with or without preamble, optionally gzip-wrapped) into a Dataset.

    Raises:
        InputError: unreadable, not DICOM, or broken beyond parsing.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        src = _open_source(path)
        with pydicom_warnings_to_log():
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


def has_pixels(ds: Dataset) -> bool:
    """True when the data set holds pixel data (integer, float or double-float)."""
    return any(kw in ds for kw in _PIXEL_KEYWORDS)


def object_kind(ds: Dataset) -> str:
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


def is_image_header(ds: Dataset) -> bool:
    """True for data sets that describe an image (header read without pixel data)."""
    if str(ds.get("SOPClassUID", "")) == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        return False
    return "Rows" in ds and "Columns" in ds


def int_value(ds: Dataset, keyword: str, default: int, where: Path | str | None = None) -> int:
    """Integer attribute ``keyword`` of ``ds``, ``default`` when absent or empty.

    Raises:
        InputError: a value that is not an integer (the message names ``where``).
    """
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
    samples = int_value(ds, "SamplesPerPixel", 1, path)
    if samples != 1 or photometric.startswith(_COLOUR_PHOTOMETRIC):
        raise InputError(
            f"{path}: colour image ({photometric}, {samples} samples per pixel); "
            "mrisr needs one greyscale channel (MONOCHROME1/2)"
        )


def check_header_sizes(ds: Dataset, path: Path | str) -> tuple[int, int, int]:
    """Channel and size checks on a header (read with or without pixel data).

    Returns:
        ``(rows, columns, frames)``.

    Raises:
        InputError: colour or mosaic image, invalid sizes, or more voxels than
            :func:`~mrisr.io.limits.check_voxel_count` allows.
    """
    _check_greyscale(ds, path)
    rows = int_value(ds, "Rows", 0, path)
    cols = int_value(ds, "Columns", 0, path)
    frames = int_value(ds, "NumberOfFrames", 1, path)
    check_voxel_count((cols, rows, frames), path)
    return rows, cols, frames


def check_image_header(ds: Dataset, path: Path | str) -> tuple[int, int, int]:
    """Validate size, channels and (for uncompressed data) pixel-data length before decoding anything.

    Returns:
        ``(rows, columns, frames)``.
    """
    rows, cols, frames = check_header_sizes(ds, path)
    if "PixelData" in ds:
        tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        try:
            compressed = bool(tsyntax is not None and getattr(tsyntax, "is_compressed", False))
        except ValueError:  # pydicom: "UID is not a transfer syntax"
            raise InputError(f"{path}: TransferSyntaxUID {one_line(str(tsyntax), limit=80)} is not a transfer "
                             "syntax") from None
        if not compressed:
            bits = int_value(ds, "BitsAllocated", 16, path)
            expected = math.ceil(rows * cols * frames * bits / 8)
            have = len(ds.PixelData or b"")
            if have < expected:
                raise InputError(
                    f"{path}: pixel data is truncated ({have} of {expected} bytes for "
                    f"{frames} frame(s) of {rows}x{cols} at {bits} bits)"
                )
            if have >= 2 * expected:
                # padding is a few bytes; a whole image more means Rows/Columns/NumberOfFrames are wrong
                raise InputError(
                    f"{path}: pixel data holds {have} bytes, at least twice the {expected} that {frames} frame(s) "
                    f"of {rows}x{cols} at {bits} bits need (Rows, Columns or NumberOfFrames is wrong)"
                )
    return rows, cols, frames


def decode(ds: Dataset, path: Path | str) -> np.ndarray:
    """Stored pixel values (before rescale), shape ``(frames, rows, cols)``."""
    rows, cols, frames = check_image_header(ds, path)
    try:
        with pydicom_warnings_to_log():
            arr = np.asarray(ds.pixel_array)
    except MemoryError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot decode pixel data: {one_line(exc)}") from None
    if arr.size != rows * cols * frames:
        raise InputError(f"{path}: decoded {arr.shape} pixels, header says {frames}x{rows}x{cols}")
    return arr.reshape(frames, rows, cols)


def require_pixels(ds: Dataset, path: Path | str) -> None:
    """Refuse a data set without pixel data: a truncated image, or an object that is not an image.

    Raises:
        InputError: naming ``path`` and what the object is.
    """
    if not has_pixels(ds):
        if is_image_header(ds):
            raise InputError(f"{path}: DICOM image header without pixel data (truncated file?)")
        raise InputError(f"{path}: DICOM {object_kind(ds)} object without pixel data (not an image)")


def strip_pixels(ds: Dataset) -> Dataset:
    """Remove the pixel data from ``ds`` in place (headers kept in ``meta`` stay small); returns ``ds``."""
    for kw in _PIXEL_KEYWORDS:
        if kw in ds:
            delattr(ds, kw)
    return ds


def float_values(value: Any, n: int) -> np.ndarray | None:
    """A multi-valued DS/FD attribute (or a backslash-separated string) as ``(n,)`` float64, None when
    absent, unparsable, of another length or not finite."""
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


def stated_values(value: Any, n: int, keyword: str, where: Path | str) -> np.ndarray | None:
    """A geometry attribute (ImagePositionPatient, ImageOrientationPatient, PixelSpacing) as ``(n,)``
    float64; None only when absent or empty.

    Raises:
        InputError: present but not ``n`` finite numbers (garbage, NaN, a wrong count): mrisr refuses rather
            than treat it as absent and invent a geometry.
    """
    if value is None or value == "" or (isinstance(value, Sequence) and not isinstance(value, str | bytes)
                                        and len(value) == 0):
        return None
    arr = float_values(value, n)
    if arr is None:
        text = (value.decode("latin-1") if isinstance(value, bytes) else value if isinstance(value, str)
                else "\\".join(str(v) for v in value) if isinstance(value, Sequence) else str(value))
        shown = one_line(text, limit=80)
        raise InputError(f"{where}: {keyword} '{shown}' is not {n} finite numbers; mrisr does not invent "
                         "a geometry")
    return arr


def float_value(value: Any) -> float | None:
    """A single-valued numeric attribute as float, None when absent, unparsable or not finite."""
    arr = float_values(value, 1)
    return None if arr is None else float(arr[0])


def rescale_of(ds: Dataset) -> tuple[float, float]:
    """``(slope, intercept)`` mapping stored values to voxels; ``(1, 0)`` when absent (a zero slope is 1)."""
    slope = float_value(ds.get("RescaleSlope"))
    if slope is None:
        # RT dose grids scale their stored integers by DoseGridScaling (Gy) instead of RescaleSlope
        slope = float_value(ds.get("DoseGridScaling"))
    intercept = float_value(ds.get("RescaleIntercept"))
    return (1.0 if slope is None or slope == 0 else slope), (0.0 if intercept is None else intercept)
