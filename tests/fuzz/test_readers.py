"""Bounded fuzzing of the readers: NIfTI header fields and bytes, DICOM data sets with random attribute
values, DICOM series with random geometry. Only mrisr's own errors (:class:`~mrisr.errors.MrisrError`) may
escape, and whatever is read has finite voxels and a finite, non-singular affine.

Fixed seed (``derandomize=True``), a fixed number of examples, no example database: every CI run tries the
same inputs, in a few seconds each.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
import pydicom.config
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydicom.uid import generate_uid

from mrisr.errors import MrisrError
from mrisr.io.messages import held_warnings
from mrisr.io.readers import read_volume
from tests.hostile.cases import IOP, nifti_bytes
from tests.io.dicom.factory import mr_slice, save

FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=150,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True, width=32)
SMALL_FLOAT = st.one_of(st.sampled_from([0.0, -1.0, 1.0, 0.5, 1e-30, 1e30, np.nan, np.inf, -np.inf]),
                        st.floats(-1e4, 1e4))


@contextmanager
def _folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mrisr-fuzz-") as name:
        yield Path(name)


def _read_or_refuse(path: Path) -> None:
    """Read ``path``: a refusal must be a MrisrError; a success must have finite voxels and geometry."""
    try:
        vol = read_volume(path)
    except MrisrError:
        return
    assert np.all(np.isfinite(vol.data))
    assert np.all(np.isfinite(vol.affine)) and abs(np.linalg.det(vol.affine[:3, :3])) > 0
    assert all(s > 0 for s in vol.spacing)


# ------------------------------------------------------------------------------------------------ NIfTI
#: Header fields and values that stay within each field's storage type (nibabel refuses to store others).
NIFTI_FIELDS = {
    "dim": st.lists(st.sampled_from([-3, 0, 1, 2, 3, 4, 5, 7, 8, 9, 1000, 32767]), min_size=8, max_size=8),
    "pixdim": st.lists(SMALL_FLOAT, min_size=8, max_size=8),
    "datatype": st.sampled_from([0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048,
                                 2304, 9999, -1]),
    "bitpix": st.sampled_from([0, 1, 8, 16, 32, 64, 128, -8]),
    "vox_offset": st.sampled_from([0.0, 100.0, 352.0, 353.5, 1e6, -352.0, np.nan]),
    "scl_slope": SMALL_FLOAT,
    "scl_inter": SMALL_FLOAT,
    "sform_code": st.integers(-2, 5),
    "qform_code": st.integers(-2, 5),
    "srow_x": st.lists(SMALL_FLOAT, min_size=4, max_size=4),
    "srow_y": st.lists(SMALL_FLOAT, min_size=4, max_size=4),
    "quatern_b": SMALL_FLOAT,
    "quatern_c": SMALL_FLOAT,
    "qoffset_x": SMALL_FLOAT,
    "xyzt_units": st.integers(0, 255),
    "intent_code": st.integers(-5, 3000),
}
NIFTI_EDITS = st.lists(st.one_of(*[st.tuples(st.just(k), v) for k, v in NIFTI_FIELDS.items()]), max_size=4)


@FUZZ
@given(edits=NIFTI_EDITS,
       flips=st.lists(st.tuples(st.integers(0, 351), st.integers(0, 255)), max_size=3),
       cut=st.one_of(st.none(), st.integers(0, 352 + 8 * 8 * 4 * 4)),
       gz=st.booleans())
def test_nifti_header_fuzz(edits, flips, cut, gz):
    raw = bytearray(nifti_bytes(**dict(edits)))
    for offset, value in flips:
        raw[offset] = value
    data = bytes(raw if cut is None else raw[:cut])
    with _folder() as folder:
        path = folder / ("scan.nii.gz" if gz else "scan.nii")
        path.write_bytes(gzip.compress(data) if gz else data)
        _read_or_refuse(path)


# ------------------------------------------------------------------------------------------------ DICOM
DS_VALUES = st.lists(SMALL_FLOAT, max_size=7).map(lambda vs: [pydicom.valuerep.format_number_as_ds(float(v))
                                                             if np.isfinite(v) else str(v) for v in vs])
TEXT = st.text(alphabet="abcMR01 .\\-^MOSAICRGBYBR_FULL", max_size=16)
DICOM_FIELDS = {
    "Rows": st.sampled_from([0, 1, 4, 8, 16, 65535]),
    "Columns": st.sampled_from([0, 1, 4, 8, 16, 65535]),
    "BitsAllocated": st.sampled_from([0, 1, 8, 12, 16, 32, 64]),
    "BitsStored": st.sampled_from([0, 1, 8, 12, 16, 32]),
    "HighBit": st.sampled_from([0, 7, 11, 15, 31]),
    "PixelRepresentation": st.integers(0, 2),
    "SamplesPerPixel": st.integers(0, 4),
    "NumberOfFrames": st.one_of(st.integers(-2, 70000).map(str), TEXT),
    "PhotometricInterpretation": st.sampled_from(["MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR",
                                                  "YBR_FULL", "", "BOGUS"]),
    "PixelSpacing": DS_VALUES,
    "ImagerPixelSpacing": DS_VALUES,
    "ImagePositionPatient": DS_VALUES,
    "ImageOrientationPatient": DS_VALUES,
    "SliceThickness": DS_VALUES.map(lambda v: v[:1]),
    "RescaleSlope": DS_VALUES.map(lambda v: v[:1]),
    "RescaleIntercept": DS_VALUES.map(lambda v: v[:1]),
    "ImageType": st.lists(TEXT, max_size=4),
    "Modality": TEXT,
    "PixelData": st.binary(max_size=300),
    "SOPClassUID": st.sampled_from(["1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.1.3.10", "1.2.3"]),
}
#: None deletes the attribute.
DICOM_EDITS = st.lists(st.one_of(*[st.tuples(st.just(k), st.one_of(st.none(), v)) for k, v in DICOM_FIELDS.items()]),
                       max_size=5)


@contextmanager
def _lenient_pydicom() -> Iterator[None]:
    """Let pydicom store invalid values while a test file is built (restored before mrisr reads it)."""
    saved = (pydicom.config.settings.reading_validation_mode, pydicom.config.settings.writing_validation_mode)
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
    try:
        with held_warnings():  # pydicom's complaints about the values the test stores on purpose
            yield
    finally:
        pydicom.config.settings.reading_validation_mode, pydicom.config.settings.writing_validation_mode = saved


def _edited_slice(edits, z: float = 0.0, series_uid: str | None = None, **extra) -> pydicom.Dataset:
    ds = mr_slice(np.arange(64, dtype=np.int16).reshape(8, 8), (0.0, 0.0, z), IOP, (1.0, 1.0),
                  series_uid=series_uid or generate_uid(), **extra)
    with _lenient_pydicom():
        for keyword, value in edits:
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                try:
                    setattr(ds, keyword, value)
                except (TypeError, ValueError, OverflowError):  # pydicom cannot store it: no such file exists
                    reject()
    return ds


def _saved(ds: pydicom.Dataset, path: Path) -> Path:
    """``ds`` written to ``path``; data sets pydicom itself cannot write are not mrisr's to read (rejected)."""
    if "PixelData" in ds:
        ds["PixelData"].VR = "OW"  # without BitsAllocated, pydicom cannot choose OB or OW itself
    with _lenient_pydicom():
        try:
            return save(ds, path)
        except Exception:  # any writer failure means there is no input to read
            reject()


@FUZZ
@given(edits=DICOM_EDITS, flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=3))
def test_dicom_file_fuzz(edits, flips):
    with _folder() as folder:
        path = _saved(_edited_slice(edits), folder / "image.dcm")
        raw = bytearray(path.read_bytes())
        for where, value in flips:
            raw[min(int(where * len(raw)), len(raw) - 1)] = value
        path.write_bytes(bytes(raw))
        _read_or_refuse(path)


POSITION = st.sampled_from([0.0, 0.0, 3.0, 6.0, 7.5, 9.0, -3.0, 1e9])


@settings(FUZZ, max_examples=60)
@given(positions=st.lists(POSITION, min_size=2, max_size=4),
       slice_edits=st.lists(DICOM_EDITS.map(lambda e: e[:2]), min_size=4, max_size=4),
       temporal=st.lists(st.one_of(st.none(), st.integers(1, 2)), min_size=4, max_size=4))
def test_dicom_series_fuzz(positions, slice_edits, temporal):
    with _folder() as folder:
        uid = generate_uid()
        for k, z in enumerate(positions):
            extra = {} if temporal[k] is None else {"TemporalPositionIdentifier": temporal[k]}
            ds = _edited_slice(slice_edits[k], z, series_uid=uid, instance_number=k + 1, **extra)
            _saved(ds, folder / "series" / f"im{k}.dcm")
        _read_or_refuse(folder / "series")


def test_fuzz_strategies_build_valid_inputs_too():
    # the starting points are valid, so the fuzzers do probe the read path, not only the refusals
    with _folder() as folder:
        (folder / "scan.nii").write_bytes(nifti_bytes())
        assert read_volume(folder / "scan.nii").shape == (8, 8, 4)
        assert read_volume(_saved(_edited_slice([]), folder / "image.dcm")).shape == (8, 8, 1)
