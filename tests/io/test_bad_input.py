"""Bad input through the CLI: one line ``mrisr: error: ...`` on stderr, exit 1 (2 for usage), nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

import mrisr.io.detect
from mrisr.cli import main
from tests.io.dicom.factory import pydicom_file


def _fails_cleanly(capsys, tmp_path, args, *, match: str | tuple[str, ...] = ()) -> str:
    """Run ``mrisr convert ARGS OUT`` (and ``mrisr info ARGS``): exit 1, one error line, nothing written."""
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    lines = []
    for argv in (["convert", *args, str(out_dir / "result.nii.gz")], ["info", *args]):
        before = sorted(p.name for p in tmp_path.rglob("*"))
        assert main(argv) == 1, argv
        captured = capsys.readouterr()
        err = captured.err.strip().splitlines()
        assert len(err) == 1, captured.err
        assert err[0].startswith("mrisr: error: "), err[0]
        assert "Traceback" not in captured.err
        assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written, no temporaries
        for word in (match,) if isinstance(match, str) else match:
            assert word in err[0], (word, err[0])
        lines.append(err[0])
    assert not any(out_dir.iterdir())
    return lines[0]


@pytest.fixture
def nifti_file(tmp_path):
    img = nib.Nifti1Image(np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8), np.diag([1.0, 1.2, 2.0, 1.0]))
    path = tmp_path / "in" / "scan.nii"
    path.parent.mkdir()
    nib.save(img, path)
    return path


# -- unreadable -------------------------------------------------------------------------------------
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files without permission")
def test_unreadable_permission(tmp_path, capsys, nifti_file):
    nifti_file.chmod(0)
    try:
        _fails_cleanly(capsys, tmp_path, [str(nifti_file)], match="ermission denied")
    finally:
        nifti_file.chmod(0o644)


def test_unreadable_permission_simulated(tmp_path, capsys, nifti_file, monkeypatch):
    # Runs even as root: the first read of the file raises EACCES, as it would for another user.
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(args[0]))

    monkeypatch.setattr(mrisr.io.detect, "open", denied, raising=False)
    _fails_cleanly(capsys, tmp_path, [str(nifti_file)], match=("cannot read", "Permission denied"))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files without permission")
def test_unreadable_file_inside_dicom_folder(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(pydicom_file("MR_small.dcm"), folder / "a.dcm")
    (folder / "a.dcm").chmod(0)
    try:
        _fails_cleanly(capsys, tmp_path, [str(folder)], match="permission denied")
    finally:
        (folder / "a.dcm").chmod(0o644)


def test_missing_path(tmp_path, capsys):
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "nope.nii")], match="no such file")


# -- truncated --------------------------------------------------------------------------------------
def test_truncated_dicom(tmp_path, capsys):
    _fails_cleanly(capsys, tmp_path, [str(pydicom_file("MR_truncated.dcm"))], match="truncated")


def test_dicom_truncated_in_its_header(tmp_path, capsys):
    path = tmp_path / "in" / "cut.dcm"
    path.parent.mkdir()
    path.write_bytes(pydicom_file("MR_small.dcm").read_bytes()[:700])
    _fails_cleanly(capsys, tmp_path, [str(path)], match=("cut.dcm", "truncated"))


@pytest.mark.parametrize("name", ["scan.nii", "scan.nii.gz"])
def test_truncated_nifti(tmp_path, capsys, name):
    img = nib.Nifti1Image(np.random.default_rng(0).random((20, 20, 20)).astype(np.float32), np.eye(4))
    full = tmp_path / "full" / name
    full.parent.mkdir()
    nib.save(img, full)
    cut = tmp_path / "in" / name
    cut.parent.mkdir()
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    shutil.rmtree(full.parent)
    _fails_cleanly(capsys, tmp_path, [str(cut)], match=("truncated", name))


# -- empty, unknown format, no images -------------------------------------------------------------
@pytest.mark.parametrize("name", ["empty.nii", "empty.dcm", "empty"])
def test_empty_file(tmp_path, capsys, name):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / name).touch()
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in" / name)], match="is empty")


def test_unknown_format(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("these are not voxels\n")
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in" / "notes.txt")], match="unknown file format")


def test_unknown_content_without_extension(tmp_path, capsys):
    # no extension is treated as a possible raw DICOM data set; the reader must still say what is wrong
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan").write_bytes(b"some random bytes that are no scan at all" * 10)
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in" / "scan")], match="not a DICOM file")


def test_gzip_of_something_else(tmp_path, capsys):
    import gzip

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.nii.gz").write_bytes(gzip.compress(b"plain text, gzipped" * 50))
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in" / "x.nii.gz")], match="gzip")


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in")], match=("no DICOM images", "empty folder"))


def test_folder_with_no_images(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    shutil.copy(pydicom_file("rtplan.dcm"), folder / "plan.dcm")
    shutil.copy(pydicom_file("dicomdirtests/DICOMDIR"), folder / "DICOMDIR")
    line = _fails_cleanly(capsys, tmp_path, [str(folder)], match="no DICOM images")
    assert "1 not DICOM" in line and "RTPLAN without pixel data" in line and "DICOMDIR" in line


# -- DICOM without pixel data -----------------------------------------------------------------------
def test_dicom_without_pixel_data(tmp_path, capsys):
    _fails_cleanly(capsys, tmp_path, [str(pydicom_file("rtplan.dcm"))], match=("RTPLAN", "without pixel data"))


def test_image_header_without_pixel_data_in_a_series(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    del ds.PixelData
    ds.save_as(folder / "nopix.dcm")
    _fails_cleanly(capsys, tmp_path, [str(folder)], match="without pixel data")


# -- NaN / Inf --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_voxels_nifti(tmp_path, capsys, bad):
    data = np.ones((4, 5, 6), dtype=np.float32)
    data[1, 2, 3] = bad
    (tmp_path / "in").mkdir()
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "in" / "bad.nii")
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in" / "bad.nii")], match="NaN or Inf")


def test_nan_voxels_npy(tmp_path, capsys):
    data = np.zeros((8, 8), dtype=np.float32)
    data[0, 0] = np.nan
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "bad.npy", data)
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in" / "bad.npy")], match="NaN or Inf")


def test_nan_voxels_float_dicom(tmp_path, capsys):
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    values = ds.pixel_array.astype(np.float32)
    values[3, 4] = np.nan
    del ds.PixelData
    for kw in ("BitsStored", "HighBit", "PixelRepresentation"):
        delattr(ds, kw)
    ds.BitsAllocated = 32
    ds.FloatPixelData = values.tobytes()
    (tmp_path / "in").mkdir()
    ds.save_as(tmp_path / "in" / "float.dcm")
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in" / "float.dcm")], match="NaN or Inf")


# -- RGB where one channel is expected --------------------------------------------------------------
@pytest.mark.parametrize("name", ["SC_rgb_rle.dcm", "SC_rgb_small_odd.dcm", "examples_palette.dcm"])
def test_rgb_dicom(tmp_path, capsys, name):
    _fails_cleanly(capsys, tmp_path, [str(pydicom_file(name))], match="colour image")


def test_rgb_dicom_in_a_folder(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    shutil.copy(pydicom_file("SC_rgb_rle.dcm"), tmp_path / "in" / "x.dcm")
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in")], match="colour image")


def test_colour_png(tmp_path, capsys):
    rgb = np.zeros((12, 10, 3), dtype=np.uint8)
    rgb[..., 0] = np.arange(10, dtype=np.uint8) * 20
    (tmp_path / "in").mkdir()
    Image.fromarray(rgb).save(tmp_path / "in" / "colour.png")
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in" / "colour.png")], match="colour image")


# -- absurd sizes: refused from the header, before allocating --------------------------------------
def test_absurd_nifti2_header(tmp_path, capsys):
    hdr = nib.Nifti2Header()
    hdr.set_data_shape((100000, 100000, 100000))
    hdr.set_data_dtype(np.float32)
    hdr["vox_offset"] = 544
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "huge.nii").write_bytes(hdr.binaryblock + b"\x00" * 4 + b"\x00" * 64)
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in" / "huge.nii")], match=("100000, 100000, 100000", "limit"))


def test_absurd_nifti1_header(tmp_path, capsys):
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((32767, 32767, 32767))
    hdr.set_data_dtype(np.float32)
    hdr["vox_offset"] = 352
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "huge.nii").write_bytes(hdr.binaryblock + b"\x00" * 4 + b"\x00" * 64)
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in" / "huge.nii")], match="limit")


def test_absurd_dicom_header(tmp_path, capsys):
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 1000
    (tmp_path / "in").mkdir()
    ds.save_as(tmp_path / "in" / "huge.dcm")
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in" / "huge.dcm")], match=("65535, 65535, 1000", "limit"))


def test_absurd_dicom_series_total(tmp_path, capsys, monkeypatch):
    # Each file is plausible; together they exceed the limit (lowered here to keep the test small).
    import mrisr.io.limits

    monkeypatch.setattr(mrisr.io.limits, "MAX_VOXELS", 64 * 64 * 2)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{i}"
        ds.ImagePositionPatient = [0, 0, i]
        ds.save_as(folder / f"{i}.dcm")
    _fails_cleanly(capsys, tmp_path, [str(folder)], match="limit")


# -- usage errors and --debug -------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [[], ["convert"], ["info"], ["info", "x", "--bogus"], ["frobnicate"]])
def test_usage_error_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_unknown_output_format_refused_before_reading(tmp_path, capsys, nifti_file):
    assert main(["convert", str(nifti_file), str(tmp_path / "out.xyz")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown output format" in err[0]
    assert main(["convert", str(nifti_file), str(tmp_path / "out.dcm")]) == 1
    assert "folder" in capsys.readouterr().err


def test_debug_shows_traceback(tmp_path):
    empty = tmp_path / "empty.nii"
    empty.touch()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    quiet = subprocess.run([sys.executable, "-m", "mrisr", "info", str(empty)],
                           capture_output=True, text=True, env=env, timeout=120)
    assert quiet.returncode == 1
    assert quiet.stderr.strip().splitlines() == [f"mrisr: error: {empty} is empty"]
    loud = subprocess.run([sys.executable, "-m", "mrisr", "--debug", "info", str(empty)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert loud.returncode == 1
    assert "Traceback (most recent call last)" in loud.stderr and "InputError" in loud.stderr


def test_unreadable_folder_listing(tmp_path, capsys, monkeypatch):
    import mrisr.io.dicom.scanning

    (tmp_path / "in").mkdir()

    def walk(top, onerror=None, **kwargs):
        onerror(PermissionError(13, "Permission denied", str(top)))
        yield from ()

    monkeypatch.setattr(mrisr.io.dicom.scanning.os, "walk", walk)
    _fails_cleanly(capsys, tmp_path, [str(tmp_path / "in")], match=("cannot read folder", "Permission denied"))
