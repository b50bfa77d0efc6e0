"""`mrisr convert SERIES OUT --anonymise`: the DICOM basic confidentiality profile (PS3.15 Annex E)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import tag_for_keyword

from mrisr.cli import main
from mrisr.io import read_volume
from mrisr.io.dicom.anonymise import BASIC_PROFILE, anonymise_dataset
from tests.safety.conftest import PHI, checksums


def _texts(ds: pydicom.Dataset) -> str:
    """Every value in a data set (sequences included) as one string."""
    return " ".join(str(el.value) for el in ds.iterall() if el.VR not in ("OB", "OW", "SQ"))


def test_every_profile_keyword_is_a_dicom_attribute() -> None:
    assert len(BASIC_PROFILE) > 150
    assert [k for k in BASIC_PROFILE if tag_for_keyword(k) is None] == []
    assert set(BASIC_PROFILE.values()) <= {"X", "Z", "U"}


def test_convert_anonymise_writes_a_deidentified_series(phi_series: Path, tmp_path: Path, capsys) -> None:
    before = checksums(phi_series)
    original = [pydicom.dcmread(f) for f in sorted(phi_series.iterdir())]
    out = tmp_path / "anon"
    assert main(["convert", str(phi_series), str(out), "--anonymise"]) == 0
    assert "de-identified" in capsys.readouterr().out
    assert checksums(phi_series) == before  # the input is untouched
    files = [pydicom.dcmread(f) for f in sorted(out.iterdir())]
    assert len(files) == len(original) == 6
    old_uids = {str(original[0][k].value) for k in ("StudyInstanceUID", "FrameOfReferenceUID", "SeriesInstanceUID")}
    old_uids |= {str(ds.SOPInstanceUID) for ds in original}
    for ds in files:
        text = _texts(ds) + " " + _texts(ds.file_meta)
        for value in (*PHI.values(), "Jane", "Doe", "MRN", "ACME private"):
            assert value not in text, (value, ds)
        assert not any(el.tag.is_private for el in ds.iterall())
        assert not any(el.tag.group == 0x6000 for el in ds)
        assert ds.PatientIdentityRemoved == "YES"
        assert "PS3.15" in ds.DeidentificationMethod
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.PatientName == "" and ds.PatientID == "" and ds.PatientBirthDate == ""
        assert "StudyDate" in ds and ds.StudyDate == ""  # Type 2: present and empty
        for kw in ("InstitutionName", "OperatorsName", "StudyDescription", "AccessionNumber"):
            assert not ds.get(kw), kw
        for kw in ("StudyInstanceUID", "FrameOfReferenceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            assert str(ds[kw].value) not in old_uids, kw
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # new UIDs mapped consistently: one study, one frame of reference, one series, distinct instances
    for kw in ("StudyInstanceUID", "FrameOfReferenceUID", "SeriesInstanceUID"):
        assert len({str(ds[kw].value) for ds in files}) == 1, kw
    assert len({str(ds.SOPInstanceUID) for ds in files}) == len(files)
    # what the scan is, is kept: geometry, voxels, acquisition parameters
    src, got = read_volume(phi_series), read_volume(out)
    assert np.array_equal(src.data, got.data) and np.allclose(src.affine, got.affine, atol=1e-4)
    assert files[0].Modality == "MR" and float(files[0].RepetitionTime) == 500


def test_anonymise_maps_uids_consistently_and_recurses_into_sequences() -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    uids: dict[str, str] = {}
    a, b = Dataset(), Dataset()
    for ds, sop in ((a, "1.2.3.10"), (b, "1.2.3.11")):
        ds.StudyInstanceUID, ds.SOPInstanceUID = "1.2.3.1", sop
        item = Dataset()
        item.ReferencedSOPInstanceUID, item.PatientName = "1.2.3.10", "Doe^Jane"
        ds.ReferencedSeriesSequence = Sequence([item])
        anonymise_dataset(ds, uids)
    assert a.StudyInstanceUID == b.StudyInstanceUID != "1.2.3.1"
    assert a.SOPInstanceUID != b.SOPInstanceUID
    # a reference to an instance points at that instance's new UID
    assert b.ReferencedSeriesSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert a.ReferencedSeriesSequence[0].PatientName == ""


@pytest.mark.parametrize("out_name", ["anon.nii.gz", "anon.npy"])
def test_anonymise_needs_dicom_output(phi_series: Path, tmp_path: Path, capsys, out_name: str) -> None:
    assert main(["convert", str(phi_series), str(tmp_path / out_name), "--anonymise"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mrisr: error: --anonymise applies to DICOM output")
    assert not (tmp_path / out_name).exists()
