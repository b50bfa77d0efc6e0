"""DICOM -> NIfTI -> DICOM: ``convert --like`` puts the derived series back in the patient's study."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from mrisr.cli import main
from mrisr.io import read_volume
from mrisr.io.dicom import find_series
from tests.io.dicom.factory import pydicom_file


def _first(folder):
    return pydicom.dcmread(next(iter(find_series(folder).values()))[0])


def test_round_trip_through_nifti_keeps_patient_study_and_voxels(tmp_path, phantom3d):
    scan = tmp_path / "scan"
    assert main(["convert", str(pydicom_file("MR_small.dcm")), str(scan) + "/"]) == 0
    assert main(["convert", str(scan), str(tmp_path / "x.nii.gz")]) == 0
    assert main(["convert", str(tmp_path / "x.nii.gz"), str(tmp_path / "plain") + "/"]) == 0
    assert main(["convert", str(tmp_path / "x.nii.gz"), str(tmp_path / "back") + "/", "--like", str(scan)]) == 0
    src, plain, back = _first(scan), _first(tmp_path / "plain"), _first(tmp_path / "back")
    assert plain.StudyInstanceUID != src.StudyInstanceUID and plain.PatientID == ""  # NIfTI holds no patient data
    for kw in ("PatientName", "PatientID", "StudyInstanceUID", "FrameOfReferenceUID", "Modality"):
        assert back[kw].value == src[kw].value, kw
    assert back.SeriesInstanceUID != src.SeriesInstanceUID
    assert back.PixelRepresentation == src.PixelRepresentation and back.BitsStored == src.BitsStored
    a, b = read_volume(scan), read_volume(tmp_path / "back")
    assert np.array_equal(a.data, b.data) and np.allclose(a.affine, b.affine, atol=1e-4)


def test_like_errors(tmp_path, phantom3d, capsys):
    nii = tmp_path / "x.nii.gz"
    assert main(["convert", str(pydicom_file("MR_small.dcm")), str(nii)]) == 0
    assert main(["convert", str(nii), str(tmp_path / "y.nii.gz"), "--like", str(pydicom_file("MR_small.dcm"))]) == 1
    assert "--like applies to DICOM output" in capsys.readouterr().err
    assert main(["convert", str(nii), str(tmp_path / "o") + "/", "--like", str(pydicom_file("rtplan.dcm"))]) == 1
    assert "not an image" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("source", ["png", "npy"])
def test_dicom_from_images_without_headers_is_valid(tmp_path, phantom2d, source):
    from mrisr.io import write_volume

    src = tmp_path / f"in.{source}"
    write_volume(phantom2d.with_data(np.rint(phantom2d.data * 1000)), src)
    assert main(["convert", str(src), str(tmp_path / "out") + "/"]) == 0
    ds = _first(tmp_path / "out")
    assert ds.Modality == "MR" and ds.SOPClassUID == pydicom.uid.MRImageStorage and ds.StudyInstanceUID
    assert np.array_equal(read_volume(tmp_path / "out").data[:, :, 0], read_volume(src).data)
