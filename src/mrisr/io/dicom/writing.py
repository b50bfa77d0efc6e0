"""Writing: a :class:`~mrisr.io.volume.Volume` as a derived DICOM MR series, and the reference header
that gives a series written from NIfTI/PNG the patient, study and frame of reference of an existing scan
(``mrisr convert x.nii out/ --like SCAN``).

Every file gets new SeriesInstanceUID / SOPInstanceUIDs and ``DERIVED\\SECONDARY``; the grid attributes
are recomputed from the affine (:func:`mrisr.io.dicom.geometry.grid_geometry`, RAS -> LPS). A 4D volume
is written as one file per slice and time point, with ``TemporalPositionIdentifier`` (1-based) and
``TriggerTime`` when ``meta["time_spacing"]`` is known. Voxels are stored as integers again; see
:func:`write_dicom_series` for how the stored range is chosen.
"""

from __future__ import annotations

import copy
import datetime
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mrisr.errors import InputError, OutputExistsError
from mrisr.io.dicom.geometry import grid_geometry, slice_normal
from mrisr.io.dicom.reading import (
    dcmread,
    float_value,
    int_value,
    is_image_header,
    object_kind,
    pydicom_warnings_to_log,
    rescale_of,
    strip_pixels,
)
from mrisr.io.dicom.scanning import read_dicom_folder, scan_folder, series_listing
from mrisr.io.dicom.series import read_dicom_file
from mrisr.io.volume import LPS_TO_RAS, Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: Attributes copied from the source header: patient, study, equipment, frame of reference and MR
#: acquisition parameters. Everything image-specific is recomputed; everything else is dropped.
_KEPT_ATTRIBUTES = (
    "SpecificCharacterSet",
    # patient
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "PatientSize", "PatientWeight", "PatientIdentityRemoved", "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
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


@dataclass(frozen=True)
class VoxelRange:
    """What the choice of integer storage needs to know of all the voxels of a series: their min and max
    (input units) and whether every one is an integer."""

    lo: float
    hi: float
    integral: bool

    @classmethod
    def of(cls, data: np.ndarray) -> VoxelRange:
        return cls(float(data.min()), float(data.max()), bool(np.all(data == np.round(data))))


@dataclass(frozen=True)
class _Storage:
    """Integer storage of float voxels: ``stored = rint((value - intercept) / slope)`` as ``dtype``."""

    slope: float
    intercept: float
    bits_stored: int
    signed: int
    dtype: Any
    clip: bool = False

    def store(self, data: np.ndarray) -> np.ndarray:
        stored = np.rint((data.astype(np.float64) - self.intercept) / self.slope)
        if self.clip:
            stored = np.clip(stored, 0, 65535)
        return stored.astype(self.dtype)


def _storage(voxels: VoxelRange, src: Dataset | None, src_rescale: Any) -> _Storage:
    """Choose integer storage for float voxels.

    Order of preference:
      1. the source's stored type and rescale (voxels rounded to the source's quantisation), when all
         values fit and the range keeps at least 256 distinct levels (a normalised [0, 1] image written
         with a slope of 1 would collapse to two grey levels);
      2. the same rescale in the other signedness or 16 bits;
      3. integer-valued data without a source: slope 1, intercept 0, uint16/int16;
      4. otherwise a new slope/intercept mapping [min, max] onto the full uint16 range (no clipping).

    Whether all values fit is decided from ``voxels.lo`` and ``voxels.hi`` alone: the stored value is a
    monotone function of the voxel value, so its extremes are those of the extremes (the same answer as
    storing every voxel, without holding them all).
    """
    lo, hi = voxels.lo, voxels.hi
    candidates: list[tuple[float, float, int, int]] = []  # slope, intercept, bits, signed
    if src is not None:
        slope, intercept = (1.0, 0.0)
        if isinstance(src_rescale, tuple | list) and len(src_rescale) == 2:
            slope, intercept = float(src_rescale[0]), float(src_rescale[1])
        else:
            slope, intercept = rescale_of(src)
        bits = int_value(src, "BitsAllocated", 16)
        signed = int_value(src, "PixelRepresentation", 0)
        enough_levels = hi == lo or (hi - lo) / abs(slope) >= 255
        if enough_levels:
            options = ((bits, signed), (bits, 1 - signed), (16, 0), (16, 1)) if bits in (8, 16) else ((16, 0), (16, 1))
            for b, s in options:
                if (slope, intercept, b, s) not in candidates:
                    candidates.append((slope, intercept, b, s))
    if voxels.integral:
        candidates += [(1.0, 0.0, 16, 0), (1.0, 0.0, 16, 1)]
    ends = np.array([lo, hi], dtype=np.float64)
    for slope, intercept, bits, signed in candidates:
        stored = np.rint((ends - intercept) / slope)
        bits_stored = bits
        if src is not None and bits == int_value(src, "BitsAllocated", 16):
            bits_stored = min(bits, int_value(src, "BitsStored", bits))
        for bs in (bits_stored, bits):
            smin, smax = (-(2 ** (bs - 1)), 2 ** (bs - 1) - 1) if signed else (0, 2**bs - 1)
            if stored.min() >= smin and stored.max() <= smax:
                dtype = {(8, 0): np.uint8, (8, 1): np.int8, (16, 0): np.uint16, (16, 1): np.int16}[(bits, signed)]
                return _Storage(slope, intercept, bs, signed, dtype)
    slope = (hi - lo) / 65535.0 if hi > lo else 1.0
    return _Storage(slope, lo, 16, 0, np.uint16, clip=True)


def _source_header(meta: dict[str, Any]) -> Dataset | None:
    from pydicom.dataset import Dataset

    headers = meta.get("dicom_headers")
    if isinstance(headers, Sequence) and headers and isinstance(headers[0], Dataset):
        return headers[0]
    return None


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
    volume.check_finite()
    data = volume.data
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim == 3:
        data = data[..., None]
    write_dicom_frames(volume, folder, lambda k, t: data[:, :, k, t], VoxelRange.of(data))


def write_dicom_frames(volume: Volume, folder: str | Path, plane: Callable[[int, int], np.ndarray],
                       voxels: VoxelRange) -> None:
    """:func:`write_dicom_series` with the voxels given one plane at a time: ``plane(k, t)`` returns
    ``(X, Y)`` float32 voxels of slice ``k`` at time point ``t``, ``voxels`` their range over the whole
    series; ``volume`` gives the shape, geometry and metadata only (its ``data`` may be a placeholder of the
    output's shape, :func:`mrisr.io.stream.placeholder`). Used by the streaming writer
    (:func:`mrisr.io.stream.write_slabs`), which reads each plane back from a scratch file.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, MRImageStorage, generate_uid

    from mrisr import __version__

    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputExistsError(f"{folder} exists and is not an empty folder")
    n_x, n_y, n_z, n_t = (*volume.shape, 1, 1)[:4]
    iop, pixel_spacing, k_step, slice_spacing = grid_geometry(volume.affine)
    origin_lps = (LPS_TO_RAS @ volume.affine)[:3, 3]
    normal = slice_normal(iop)

    src = _source_header(volume.meta)
    storage = _storage(voxels, src, volume.meta.get("rescale"))
    slope, intercept, bits_stored, signed = storage.slope, storage.intercept, storage.bits_stored, storage.signed
    bits_alloc = np.dtype(storage.dtype).itemsize * 8

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
    source_number = float_value(src.get("SeriesNumber")) if src is not None else None
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
    lo, hi = voxels.lo, voxels.hi
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
            stored = storage.store(plane(k, t))
            ds.PixelData = np.ascontiguousarray(stored.T).astype(stored.dtype.newbyteorder("<")).tobytes()
            fm = FileMetaDataset()
            fm.MediaStorageSOPClassUID = MRImageStorage
            fm.MediaStorageSOPInstanceUID = sop_uid
            fm.TransferSyntaxUID = ExplicitVRLittleEndian
            fm.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            fm.ImplementationVersionName = f"MRISR_{__version__}"[:16]
            ds.file_meta = fm
            with pydicom_warnings_to_log():
                ds.save_as(folder / f"IM{number:05d}.dcm", enforce_file_format=True)


def reference_header(path: str | Path) -> Dataset:
    """The header (no pixel data) of a DICOM file, or of the first file of the one series in a folder.

    Used to write a derived series into the patient, study and frame of reference of an existing scan
    when the voxels come from a format without DICOM headers (``mrisr convert x.nii out/ --like SCAN``).

    Raises:
        InputError: not DICOM, no images, or a folder holding several series.
    """
    p = Path(path)
    if p.is_dir():
        found, _ = scan_folder(p)
        if not found:
            raise InputError(f"{p}: no DICOM images found to take headers from")
        if len(found) > 1:
            raise InputError(f"{p} holds {len(found)} DICOM series; give one file or a folder holding one series: "
                             f"{series_listing(found)}")
        return next(iter(found.values()))[0][1]
    if not p.is_file():
        raise InputError(f"{p}: no such file or folder")
    ds = dcmread(p, stop_before_pixels=True)
    if not is_image_header(ds):
        raise InputError(f"{p}: DICOM {object_kind(ds)} object is not an image; give a file of the scan's series")
    return strip_pixels(ds)


#: Largest angle (degrees) between an axis of a volume and the nearest axis of a ``--like`` reference.
LIKE_ANGLE_TOLERANCE_DEG = 1.0


def field_of_view_corners(affine: np.ndarray, spatial_shape: Sequence[int]) -> np.ndarray:
    """The 8 corners ``(8, 3)`` (world mm) of the box the voxels cover: voxel edges at ``-0.5`` and ``n - 0.5``
    on each axis (a 2D shape covers one voxel along its third axis)."""
    shape = [*list(spatial_shape)[:3], 1, 1][:3]
    edges = [(-0.5, n - 0.5) for n in shape]
    ijk = np.array([[a, b, c, 1.0] for a in edges[0] for b in edges[1] for c in edges[2]])
    return (ijk @ np.asarray(affine, dtype=np.float64).T)[:, :3]


def geometry_mismatch(volume: Volume, reference: Volume) -> str | None:
    """Why ``volume`` does not lie where ``reference`` lies (``None`` when it does).

    Every axis of ``volume`` must be parallel to an axis of ``reference`` within
    :data:`LIKE_ANGLE_TOLERANCE_DEG`, and every corner of its field of view within one voxel (the larger
    spacing of the two, at least 1 mm) of a corner of the reference's: an upscaled or degraded copy keeps
    the field of view (a centre crop to a multiple of the scale moves it by less than a coarse voxel).
    """
    axes = np.asarray(volume.affine, dtype=np.float64)[:3, :3]
    ref_axes = np.asarray(reference.affine, dtype=np.float64)[:3, :3]
    norms, ref_norms = np.linalg.norm(axes, axis=0), np.linalg.norm(ref_axes, axis=0)
    if np.any(norms == 0) or np.any(ref_norms == 0):
        return "an affine has a zero-length axis"
    cosines = np.abs((axes / norms).T @ (ref_axes / ref_norms)).max(axis=1)
    if np.any(cosines < np.cos(np.radians(LIKE_ANGLE_TOLERANCE_DEG))):
        worst = float(np.degrees(np.arccos(np.clip(cosines.min(), -1.0, 1.0))))
        return (f"its orientation differs from the reference's (an axis is {worst:.1f} deg from the nearest one, "
                f"tolerance {LIKE_ANGLE_TOLERANCE_DEG:g} deg)")
    corners = field_of_view_corners(volume.affine, volume.spatial_shape)
    ref_corners = field_of_view_corners(reference.affine, reference.spatial_shape)
    dist = float(np.linalg.norm(corners[:, None] - ref_corners[None], axis=2).min(axis=1).max())
    tolerance = max(1.0, *volume.spacing, *reference.spacing)
    if dist > tolerance:
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        rlo, rhi = ref_corners.min(axis=0), ref_corners.max(axis=0)
        box = "x".join(f"[{a:.1f}, {b:.1f}]" for a, b in zip(lo, hi, strict=True))
        ref_box = "x".join(f"[{a:.1f}, {b:.1f}]" for a, b in zip(rlo, rhi, strict=True))
        return (f"its field of view {box} mm is {dist:.1f} mm away from the reference's {ref_box} mm "
                f"(tolerance {tolerance:.3g} mm)")
    return None


def like_header(path: str | Path, volume: Volume, force: bool = False) -> Dataset:
    """:func:`reference_header` of ``path``, after checking that ``volume`` lies in the reference scan's field
    of view and orientation (:func:`geometry_mismatch`); ``force`` (``--force-like``) skips the check.

    Raises:
        InputError: the reference is unusable, or the geometries differ (the message says how).
    """
    header = reference_header(path)
    if not force:
        p = Path(path)
        reference = read_dicom_folder(p) if p.is_dir() else read_dicom_file(p)
        why = geometry_mismatch(volume, reference)
        if why is not None:
            raise InputError(f"--like {path}: the volume does not lie where the reference scan lies: {why}; "
                             "writing it into that patient's frame of reference would misplace it "
                             "(use --force-like if the geometry is known to match)")
    return header
