"""Inputs for the safety tests: a NIfTI scan, a DICOM series full of identifying data, checksums."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from mrisr.data.phantoms import head_phantom
from mrisr.io import write_volume
from mrisr.io.volume import Volume
from tests.conftest import oblique_affine

#: What the identifying DICOM series carries (and what must never reach an output unasked).
PHI = {"PatientName": "Doe^Jane", "PatientID": "MRN-884422", "PatientBirthDate": "19610203",
       "InstitutionName": "St Example Hospital", "ReferringPhysicianName": "House^Gregory",
       "OperatorsName": "Tech^Tom", "AccessionNumber": "ACC123456", "StudyDescription": "Brain for Jane Doe"}


def checksums(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (or of ``root`` itself), keyed by relative path."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root) if p != root else p.name): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


@pytest.fixture
def nifti_scan(tmp_path: Path) -> Path:
    """A 32x28x6 oblique head phantom as NIfTI, integer intensities 0..1000."""
    path = tmp_path / "in" / "scan.nii.gz"
    write_volume(Volume(np.rint(head_phantom((32, 28, 6), seed=1) * 1000.0), oblique_affine(), {}), path)
    return path


def identifying_header():
    """An MR header with patient, study and institution data (what :data:`PHI` lists)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    for kw, value in PHI.items():
        setattr(ds, kw, value)
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.StudyDate, ds.StudyTime = "20240102", "101500"
    ds.Modality, ds.Manufacturer = "MR", "ACME"
    ds.RepetitionTime, ds.EchoTime = "500", "12"
    ds.SeriesNumber = 7
    ds.SeriesDescription = "T1 axial"
    return ds


@pytest.fixture
def phi_series(tmp_path: Path) -> Path:
    """A DICOM MR series (32x28x6) whose headers carry :data:`PHI`, a private tag and overlay text."""
    path = tmp_path / "in" / "series"
    vol = Volume(np.rint(head_phantom((32, 28, 6), seed=2) * 1000.0), oblique_affine(),
                 {"dicom_headers": [identifying_header()]})
    write_volume(vol, path)
    import pydicom

    for f in sorted(path.iterdir()):  # what mrisr's writer would not copy: staff, private and overlay text
        ds = pydicom.dcmread(f)
        ds.OperatorsName = PHI["OperatorsName"]
        ds.add_new(0x00290010, "LO", "ACME private")
        ds.add_new(0x00291010, "LO", "private scanner note about Jane")
        ds.add_new(0x60004000, "LT", "overlay comment: Jane")
        ds.save_as(f)
    return path
