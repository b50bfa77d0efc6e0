"""Series folders: several series, --series, non-image files, inconsistent or uneven series."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mrisr.cli import main
from mrisr.errors import InputError
from mrisr.io import read_volume
from mrisr.io.dicom import find_series, read_dicom_folder
from tests.io.dicom.factory import mr_slice, oblique_iop, pydicom_file, save

IOP = oblique_iop()
NORMAL = np.cross(IOP[:3], IOP[3:])


def _series(folder, uid, n=4, gap=3.0, desc="t2 tse", rows=6, cols=5, value=0, spacing=(1.0, 1.0),
            positions=None, prefix="im"):
    positions = [k * gap for k in range(n)] if positions is None else positions
    for k, along in enumerate(positions):
        pixels = np.full((rows, cols), value + k, dtype=np.int16)
        ds = mr_slice(pixels, along * NORMAL, IOP, spacing, series_uid=uid, series_description=desc,
                      instance_number=k + 1)
        save(ds, folder / f"{prefix}{uid[-2:]}_{k}.dcm")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("mrisr: error:")
    return err[0]


def test_several_series_listed_and_series_option_picks_one(tmp_path, capsys):
    folder = tmp_path / "study"
    _series(folder, "1.2.826.0.1.3680043.8.498.11", n=4, desc="t1 axial", value=100)
    _series(folder / "sub", "1.2.826.0.1.3680043.8.498.22", n=3, desc="flair", value=500)
    out = tmp_path / "out.nii.gz"
    assert main(["convert", str(folder), str(out)]) == 1
    line = _one_error_line(capsys)
    assert "2 DICOM series" in line and "--series UID" in line
    assert "1.2.826.0.1.3680043.8.498.11" in line and "'t1 axial' (4 files)" in line
    assert "1.2.826.0.1.3680043.8.498.22" in line and "'flair' (3 files)" in line
    assert not out.exists()

    assert main(["convert", str(folder), str(out), "--series", "1.2.826.0.1.3680043.8.498.22"]) == 0
    vol = read_volume(out)
    assert vol.shape == (5, 6, 3)
    assert vol.data.min() == 500 and vol.data.max() == 502
    assert main(["info", str(folder), "--series", "1.2.826.0.1.3680043.8.498.11"]) == 0
    assert "t1 axial" in capsys.readouterr().out


def test_unknown_series_uid(tmp_path, capsys):
    _series(tmp_path / "s", "1.2.3.44")
    assert main(["info", str(tmp_path / "s"), "--series", "9.9.9"]) == 1
    line = _one_error_line(capsys)
    assert "9.9.9" in line and "1.2.3.44" in line


def test_find_series(tmp_path):
    _series(tmp_path, "1.2.3.44", n=3)
    _series(tmp_path / "x", "1.2.3.55", n=2)
    (tmp_path / "notes.txt").write_text("hello")
    shutil.copy(pydicom_file("rtplan.dcm"), tmp_path / "plan.dcm")
    series = find_series(tmp_path)
    assert {k: len(v) for k, v in series.items()} == {"1.2.3.44": 3, "1.2.3.55": 2}


def test_non_image_files_are_ignored(tmp_path):
    _series(tmp_path, "1.2.3.44", n=3)
    (tmp_path / "README").write_text("exported by some PACS")
    (tmp_path / "DICOMDIR").write_bytes(pydicom_file("dicomdirtests/DICOMDIR").read_bytes())
    shutil.copy(pydicom_file("rtplan.dcm"), tmp_path / "plan.dcm")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    vol = read_dicom_folder(tmp_path)
    assert vol.shape == (5, 6, 3)
    assert vol.meta["n_files"] == 3


def test_inconsistent_rows_columns(tmp_path):
    _series(tmp_path, "1.2.3.44", n=3)
    _series(tmp_path, "1.2.3.44", positions=[9.0], rows=8, prefix="odd")
    with pytest.raises(InputError, match="mixes image sizes"):
        read_dicom_folder(tmp_path)


def test_inconsistent_pixel_spacing(tmp_path):
    _series(tmp_path, "1.2.3.44", n=3)
    _series(tmp_path, "1.2.3.44", positions=[9.0], spacing=(1.2, 1.0), prefix="odd")
    with pytest.raises(InputError, match="mixes pixel spacings"):
        read_dicom_folder(tmp_path)


def test_inconsistent_orientation(tmp_path):
    _series(tmp_path, "1.2.3.44", n=3)
    ds = mr_slice(np.zeros((6, 5), np.int16), 9.0 * NORMAL, oblique_iop((0, 0, 0)), (1.0, 1.0), series_uid="1.2.3.44")
    save(ds, tmp_path / "tilted.dcm")
    with pytest.raises(InputError, match="2 image orientations"):
        read_dicom_folder(tmp_path)


def test_missing_slice_is_uneven_spacing(tmp_path, capsys):
    _series(tmp_path / "s", "1.2.3.44", positions=[0.0, 3.0, 6.0, 12.0, 15.0])
    assert main(["info", str(tmp_path / "s")]) == 1
    line = _one_error_line(capsys)
    assert "not evenly spaced" in line and "3 to 6 mm" in line


def test_tiny_position_jitter_is_tolerated(tmp_path):
    _series(tmp_path, "1.2.3.44", positions=[0.0, 3.0001, 5.9998, 9.0002])
    vol = read_dicom_folder(tmp_path)
    assert vol.spacing[2] == pytest.approx(3.0, abs=1e-3)


def test_same_position_images_form_time_axis(tmp_path):
    for t in range(3):
        for k in range(4):
            pixels = np.full((6, 5), 10 * t + k, dtype=np.int16)
            ds = mr_slice(pixels, k * 2.0 * NORMAL, IOP, (1.0, 1.0), series_uid="1.2.3.44",
                          instance_number=100 - (t * 4 + k), TriggerTime=40.0 * t, TemporalPositionIdentifier=t + 1)
            save(ds, tmp_path / f"f{(7 * (t * 4 + k)) % 12:02d}.dcm")
    vol = read_dicom_folder(tmp_path)
    assert vol.shape == (5, 6, 4, 3)
    for t in range(3):
        for k in range(4):
            assert np.all(vol.data[:, :, k, t] == 10 * t + k)
    assert vol.meta["time_spacing"] == pytest.approx(0.04)


def test_duplicated_slice_is_refused(tmp_path):
    _series(tmp_path, "1.2.3.44", positions=[0.0, 3.0, 6.0])
    _series(tmp_path, "1.2.3.44", positions=[3.0], prefix="dup")
    with pytest.raises(InputError, match="different numbers of images"):
        read_dicom_folder(tmp_path)
