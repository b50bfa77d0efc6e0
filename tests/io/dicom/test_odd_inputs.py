"""DICOM inputs met in the wild: gzip-wrapped series, symlinked folders, RT dose scaling, invalid values."""

from __future__ import annotations

import gzip
import os
import shutil

import numpy as np
import pydicom
import pytest

from mrisr.errors import InputError
from mrisr.io import read_volume, write_volume
from tests.io.dicom.factory import pydicom_file


@pytest.fixture
def series(tmp_path, phantom3d):
    vol = phantom3d.with_data(np.rint(phantom3d.data[:16, :12, :5]))
    write_volume(vol, tmp_path / "series")
    return tmp_path / "series", vol


def test_folder_of_gzip_wrapped_dicom_files(tmp_path, series):
    folder, vol = series
    gz = tmp_path / "gz"
    gz.mkdir()
    for f in folder.iterdir():
        (gz / (f.name + ".gz")).write_bytes(gzip.compress(f.read_bytes()))
    (gz / "other.nii.gz").write_bytes(gzip.compress(b"not dicom" * 100))  # skipped, not an error
    out = read_volume(gz)
    assert np.array_equal(out.data, vol.data) and out.meta["n_files"] == vol.shape[2]


def test_symlinked_subfolders_are_followed_once(tmp_path, series):
    folder, vol = series
    top = tmp_path / "top"
    top.mkdir()
    os.symlink(folder, top / "scan")
    os.symlink(top, top / "scan_again_loop")  # a loop back to the top must not hang nor double-count
    out = read_volume(top)
    assert np.array_equal(out.data, vol.data) and out.meta["n_files"] == vol.shape[2]


def test_rt_dose_grid_scaling_is_applied():
    path = pydicom_file("rtdose.dcm")
    ds = pydicom.dcmread(path)
    vol = read_volume(path)
    expected = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    np.testing.assert_allclose(vol.data[:, :, 0], expected[0].T, rtol=1e-6)
    assert 0.5 < float(vol.data.max()) < 2.0  # Gy, not raw integers in the millions


def test_invalid_integer_value_names_the_file(tmp_path):
    src = pydicom_file("badVR.dcm")
    shutil.copy(src, tmp_path / "bad.dcm")
    with pytest.raises(InputError, match=r"bad\.dcm: invalid NumberOfFrames"):
        read_volume(tmp_path / "bad.dcm")


def test_multiframe_without_geometry_stacks_frames_in_file_order(tmp_path, caplog):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    frames = np.arange(5 * 8 * 6, dtype=np.uint16).reshape(5, 8, 6)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.Modality = SecondaryCaptureImageStorage, "OT"
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = 8, 6, 5, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = frames.tobytes()
    ds.save_as(tmp_path / "mf.dcm", enforce_file_format=True)
    vol = read_volume(tmp_path / "mf.dcm")
    assert vol.shape == (6, 8, 5) and "file order" in caplog.text
    for k in range(5):
        assert np.array_equal(vol.data[:, :, k], frames[k].T)


def test_a_series_copied_twice_into_its_folder_is_read_once(tmp_path, series, caplog):
    folder, vol = series
    shutil.copytree(folder, folder / "copy")
    first = sorted(folder.glob("*.dcm"))[0]
    shutil.copy(first, folder / f"{first.stem} (1).dcm")
    out = read_volume(folder)
    assert out.shape == vol.shape and np.array_equal(out.data, vol.data)  # not 4D with two "time points"
    assert "same SOPInstanceUID" in caplog.text


def test_siemens_mosaic_is_refused_with_the_way_out(tmp_path):
    from tests.io.dicom.factory import mr_slice, save

    ds = mr_slice(np.zeros((24, 24), np.int16), [0, 0, 0], [1, 0, 0, 0, 1, 0], [1.0, 1.0],
                  series_uid="1.2.3.9", ImageType=["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"])
    save(ds, tmp_path / "series" / "IM1.dcm")
    for path in (tmp_path / "series" / "IM1.dcm", tmp_path / "series"):
        with pytest.raises(InputError, match=r"mosaic.*dcm2niix"):
            read_volume(path)


def test_folder_of_png_files_says_how_to_read_them(tmp_path, phantom2d):
    for name in ("a.png", "b.png"):
        write_volume(phantom2d, tmp_path / "pngs" / name)
    with pytest.raises(InputError, match=r"2 not DICOM.*one at a time"):
        read_volume(tmp_path / "pngs")


def test_non_ascii_text_declares_utf8(tmp_path):
    from mrisr.io import Volume

    vol = Volume(np.full((4, 4, 2), 7.0, np.float32), np.eye(4),
                 {"series_description": "Tête ü 頭部", "patient_id": "Müller"})
    write_volume(vol, tmp_path / "o")
    ds = pydicom.dcmread(sorted((tmp_path / "o").iterdir())[0])
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.SeriesDescription == "Tête ü 頭部 [mrisr]" and ds.PatientID == "Müller"
    write_volume(vol.with_data(vol.data, series_description="plain", patient_id="P1"), tmp_path / "a")
    assert "SpecificCharacterSet" not in pydicom.dcmread(sorted((tmp_path / "a").iterdir())[0])
