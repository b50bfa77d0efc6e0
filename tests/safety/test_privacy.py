"""Patient names, IDs and birth dates reach no output unless --show-phi is given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from mrisr.cli import main
from mrisr.data.manifest import load_manifest
from mrisr.data.prepare import prepare_dataset
from mrisr.io import read_volume, write_volume
from tests.safety.conftest import PHI, checksums

IDENTIFYING = (PHI["PatientName"], PHI["PatientID"], PHI["PatientBirthDate"])


def _all_text(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file() and p.suffix != ".npy")


def test_the_fixture_series_does_identify_the_patient(phi_series: Path) -> None:
    ds = pydicom.dcmread(next(phi_series.iterdir()))
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate) == IDENTIFYING


def test_info_hides_patient_data_unless_show_phi(phi_series: Path, capsys) -> None:
    for extra in ([], ["--json"]):
        assert main(["info", str(phi_series), *extra]) == 0
        out = capsys.readouterr().out
        assert not [v for v in IDENTIFYING if v in out], out
    assert main(["info", str(phi_series), "--json", "--show-phi"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["patient_name"], info["patient_id"], info["patient_birth_date"]) == IDENTIFYING


def test_prepare_stores_pseudonyms_unless_show_phi(phi_series: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    for i, folder in enumerate(("a", "b")):  # one patient, two series in two folders
        (source / folder).mkdir(parents=True)
        for f in phi_series.iterdir():
            ds = pydicom.dcmread(f)
            ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.9{i}"
            ds.save_as(source / folder / f.name)
    other = read_volume(phi_series)
    write_volume(other.with_data(other.data, patient_id="OTHER-77", dicom_headers=None), source / "c" / "s")
    out = tmp_path / "prepared"
    summary = prepare_dataset(source, out, split="train=0.5,val=0.5")
    text = _all_text(out) + json.dumps(summary)
    assert not [v for v in (*IDENTIFYING, "OTHER-77") if v in text]
    manifest = load_manifest(out)
    by_source = {v.record.source.split("/")[0]: v.record.patient for v in manifest.volumes}
    assert by_source == {"a": "pseudo-001", "b": "pseudo-001", "c": "pseudo-002"}  # grouping kept
    assert len({v.split for v in manifest.volumes if v.record.patient == "pseudo-001"}) == 1
    shown = tmp_path / "shown"
    assert main(["prepare", str(source), str(shown), "--split", "train=0.5,val=0.5", "--show-phi", "--no-progress"]) == 0
    by_source = {v.record.source.split("/")[0]: v.record.patient for v in load_manifest(shown).volumes}
    assert by_source == {"a": PHI["PatientID"], "b": PHI["PatientID"], "c": "OTHER-77"}
    # the same splits either way (pseudonyms sort as the IDs do)
    assert ({v.record.source: v.split for v in load_manifest(shown).volumes}
            == {v.record.source: v.split for v in manifest.volumes})


@pytest.mark.parametrize("command", ["convert", "upscale"])
def test_dicom_written_from_nifti_carries_no_identifying_data(nifti_scan: Path, tmp_path: Path,
                                                              command: str) -> None:
    out = tmp_path / "series"
    extra = ["--method", "bicubic", "--scale", "2"] if command == "upscale" else []
    assert main([command, str(nifti_scan), str(out), *extra]) == 0
    for f in sorted(out.iterdir()):
        ds = pydicom.dcmread(f)
        for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "ReferringPhysicianName",
                   "AccessionNumber", "StudyID"):
            assert str(ds.get(kw, "")) == "", kw
        for kw in ("InstitutionName", "InstitutionAddress", "OperatorsName", "PerformingPhysicianName",
                   "OtherPatientIDs", "PatientAddress", "StationName", "DeviceSerialNumber"):
            assert kw not in ds, kw
        assert not any(el.tag.is_private for el in ds.iterall())


def test_plain_convert_of_dicom_keeps_the_patient(phi_series: Path, tmp_path: Path) -> None:
    # a derived series belongs to its patient: only --anonymise removes them (test_anonymise.py)
    before = checksums(phi_series)
    assert main(["convert", str(phi_series), str(tmp_path / "copy")]) == 0
    ds = pydicom.dcmread(sorted((tmp_path / "copy").iterdir())[0])
    assert str(ds.PatientName) == PHI["PatientName"] and checksums(phi_series) == before
    assert np.array_equal(read_volume(tmp_path / "copy").data, read_volume(phi_series).data)
