"""Odd inputs that mrisr accepts on purpose (README "Hostile inputs"), each with the one warning it prints
(or none): real processes, so stderr is exactly what a user sees."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom

from tests.hostile.cases import IOP, nifti_bytes
from tests.io.dicom.factory import mr_slice, pydicom_file, save


def _mrisr(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "MRISR_DEBUG")}
    return subprocess.run([sys.executable, "-m", "mrisr", *argv], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)


def _slice(**extra: object) -> pydicom.Dataset:
    return mr_slice(np.arange(64, dtype=np.int16).reshape(8, 8), (10.0, -5.0, 3.0), IOP, (0.5, 0.5),
                    series_uid=pydicom.uid.generate_uid(), **extra)


def test_single_dicom_without_geometry_warns_once(tmp_path):
    # one image has no stacking to get wrong: read with an axial identity orientation, and said so
    ds = _slice()
    del ds.ImagePositionPatient, ds.ImageOrientationPatient
    path = save(ds, tmp_path / "no geometry ü.dcm")
    proc = _mrisr("info", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "axial identity orientation" in lines[0], proc.stderr


def test_single_dicom_without_position_warns_once(tmp_path):
    ds = _slice()
    del ds.ImagePositionPatient
    path = save(ds, tmp_path / "no position.dcm")
    proc = _mrisr("info", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no ImagePositionPatient" in lines[0] and str(path) in lines[0], proc.stderr


def test_ct_is_read_without_a_word(tmp_path):
    # reading and the baselines do not depend on the modality; a model trained on MR warns (models.intended)
    path = save(_slice(Modality="CT"), tmp_path / "ct.dcm")
    proc = _mrisr("upscale", str(path), str(tmp_path / "sr.nii.gz"), "--method", "bicubic", "--scale", "2",
                  cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert (tmp_path / "sr.nii.gz").is_file()


def test_nifti_without_orientation_warns_once(tmp_path):
    path = tmp_path / "no orientation.nii"
    path.write_bytes(nifti_bytes(sform_code=0, qform_code=0))
    proc = _mrisr("info", str(path), cwd=tmp_path)
    assert proc.returncode == 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "neither sform nor qform" in lines[0], proc.stderr


def test_paths_with_spaces_and_unicode(tmp_path):
    folder = tmp_path / "Patient Müller ß 東京"
    folder.mkdir()
    src = folder / "scan (1).nii.gz"
    src.write_bytes(gzip.compress(nifti_bytes()))
    out = folder / "out put" / "sr ü.nii.gz"
    out.parent.mkdir()
    proc = _mrisr("convert", str(src), str(out), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert out.is_file()


def test_padded_pixel_data_and_trailing_gzip_zeros(tmp_path):
    # pydicom's MR_small_padded.dcm has 128 bytes after its pixels; gzip allows zero padding after a stream
    shutil.copy(pydicom_file("MR_small_padded.dcm"), tmp_path / "padded.dcm")
    (tmp_path / "padded.nii.gz").write_bytes(gzip.compress(nifti_bytes()) + bytes(512))
    for name in ("padded.dcm", "padded.nii.gz"):
        proc = _mrisr("info", str(tmp_path / name), cwd=tmp_path)
        assert proc.returncode == 0 and proc.stderr == "", (name, proc.stderr)
