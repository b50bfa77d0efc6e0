"""Build DICOM test data with pydicom alone (independent of mrisr's writer), and locate pydicom's files.

Geometry here is written from the standard's definitions, not from mrisr code: for a frame with
ImagePositionPatient ``P``, ImageOrientationPatient ``(row_dir, col_dir)`` and PixelSpacing
``(dr, dc)``, the pixel at row ``r``, column ``c`` has its centre at ``P + c*dc*row_dir + r*dr*col_dir``
in LPS millimetres.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import EnhancedMRImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

PYDICOM_TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def pydicom_file(name: str) -> Path:
    """A file shipped inside the pydicom package (never downloaded); skip the test if absent."""
    path = PYDICOM_TEST_FILES / name
    if not path.exists():
        pytest.skip(f"pydicom test file {name} not installed")
    return path


def rotation(angles_deg: Sequence[float]) -> np.ndarray:
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def oblique_iop(angles_deg: Sequence[float] = (17.0, -11.0, 31.0)) -> np.ndarray:
    """Row and column direction (LPS) of an oblique plane: the first two columns of a rotation."""
    rot = rotation(angles_deg)
    return np.concatenate([rot[:, 0], rot[:, 1]])


def _ds_list(values: Sequence[float]) -> list[str]:
    # 16-character DS strings, as scanners write them.
    return [pydicom.valuerep.format_number_as_ds(float(v)) for v in values]


def _file_meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = sop_class
    fm.MediaStorageSOPInstanceUID = sop_uid
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    return fm


def _int16_image(sop_class: str, patient_name: str, patient_id: str, rows: int, cols: int) -> Dataset:
    """An MR data set of class ``sop_class`` with a new SOPInstanceUID, a patient and signed 16-bit
    greyscale pixels of ``rows`` x ``cols`` (pixel data not yet set)."""
    sop_uid = generate_uid()
    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, sop_uid)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.Modality = "MR"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def mr_slice(
    pixels: np.ndarray,
    ipp: Sequence[float],
    iop: Sequence[float],
    pixel_spacing: Sequence[float],
    *,
    series_uid: str,
    study_uid: str = "1.2.826.0.1.3680043.8.498.1",
    instance_number: int = 1,
    slope: float | None = None,
    intercept: float | None = None,
    series_description: str = "t1 oblique",
    series_number: int = 3,
    slice_thickness: float = 5.0,
    **extra: object,
) -> Dataset:
    """A single-frame MR Image Storage data set holding ``pixels`` (rows x columns, int16)."""
    ds = _int16_image(MRImageStorage, "Test^Patient", "P0001", *pixels.shape)
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesDescription = series_description
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    ds.ImagePositionPatient = _ds_list(ipp)
    ds.ImageOrientationPatient = _ds_list(iop)
    ds.PixelSpacing = _ds_list(pixel_spacing)
    ds.SliceThickness = slice_thickness
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<i2").tobytes()
    return ds


def enhanced_mr(
    frames: np.ndarray,
    ipps: Sequence[Sequence[float]],
    iop: Sequence[float],
    pixel_spacing: Sequence[float],
    *,
    slope: float = 1.0,
    intercept: float = 0.0,
    temporal_index: Sequence[int] | None = None,
    orientation_per_frame: bool = False,
) -> Dataset:
    """An Enhanced MR Image Storage data set: ``frames`` (n, rows, cols) int16, geometry in functional groups.

    Pixel measures, rescale (and by default the orientation) are in the shared groups; each frame's
    position (and optionally orientation and temporal index) in its per-frame group.
    """
    n, rows, cols = frames.shape
    ds = _int16_image(EnhancedMRImageStorage, "Test^Enhanced", "P0002", rows, cols)
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.SeriesDescription = "enhanced oblique"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.NumberOfFrames = n

    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = _ds_list(pixel_spacing)
    measures.SliceThickness = 3.0
    shared.PixelMeasuresSequence = DicomSequence([measures])
    transform = Dataset()
    transform.RescaleSlope = slope
    transform.RescaleIntercept = intercept
    transform.RescaleType = "US"
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    if not orientation_per_frame:
        orient = Dataset()
        orient.ImageOrientationPatient = _ds_list(iop)
        shared.PlaneOrientationSequence = DicomSequence([orient])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    per_frame = []
    for i in range(n):
        item = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = _ds_list(ipps[i])
        item.PlanePositionSequence = DicomSequence([pos])
        if orientation_per_frame:
            orient = Dataset()
            orient.ImageOrientationPatient = _ds_list(iop)
            item.PlaneOrientationSequence = DicomSequence([orient])
        content = Dataset()
        content.InStackPositionNumber = i + 1
        if temporal_index is not None:
            content.TemporalPositionIndex = int(temporal_index[i])
        item.FrameContentSequence = DicomSequence([content])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = np.ascontiguousarray(frames, dtype="<i2").tobytes()
    return ds


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def lps_to_ras(points: np.ndarray) -> np.ndarray:
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., :2] *= -1
    return out


def pixel_centres_lps(
    ipp: Sequence[float], iop: Sequence[float], pixel_spacing: Sequence[float], rows: int, cols: int
) -> np.ndarray:
    """LPS centres of every pixel of one frame, shape ``(cols, rows, 3)`` indexed ``[c, r]``."""
    row_dir, col_dir = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    c = np.arange(cols)[:, None, None]
    r = np.arange(rows)[None, :, None]
    return np.asarray(ipp, float) + c * pixel_spacing[1] * row_dir + r * pixel_spacing[0] * col_dir
