"""Acceptance: every MR file with pixel data in pydicom's own test data reads, with pydicom's values."""

from __future__ import annotations

import gzip
import warnings

import numpy as np
import pydicom
import pytest

from mrisr.cli import main
from mrisr.io import read_volume
from mrisr.io.dicom import find_series
from tests.io.dicom.factory import PYDICOM_TEST_FILES, pydicom_file

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom's own notes on odd test files

TRUNCATED = {"MR_truncated.dcm"}
#: Files the issue names explicitly: the discovery below must find them (guards against finding nothing).
NAMED = {
    "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
    "MR_small_bigendian.dcm", "MR_small_expb.dcm", "MR_small_implicit.dcm", "MR_small_padded.dcm",
    "examples_overlay.dcm",
}


def _mr_files_with_pixels() -> list[str]:
    found = []
    for path in sorted(PYDICOM_TEST_FILES.rglob("*")):
        if not path.is_file():
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=False)
        except Exception:
            continue
        if ds.get("Modality") == "MR" and "PixelData" in ds and path.name not in TRUNCATED:
            found.append(str(path.relative_to(PYDICOM_TEST_FILES)))
    return found


MR_FILES = _mr_files_with_pixels()


def test_discovery_finds_the_named_files():
    assert NAMED <= {name.split("/")[-1] for name in MR_FILES}


@pytest.mark.parametrize("name", MR_FILES)
def test_reads_pydicom_mr_file_with_pydicoms_values(name):
    path = PYDICOM_TEST_FILES / name
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1.0)) + float(
        ds.get("RescaleIntercept", 0.0))
    vol = read_volume(path)
    assert vol.shape == (ds.Columns, ds.Rows, 1)
    np.testing.assert_array_equal(vol.data[:, :, 0], expected.T.astype(np.float32))
    assert vol.meta["modality"] == "MR"
    assert vol.meta["stored_dtype"] == str(ds.pixel_array.dtype)
    # spacing in-plane from PixelSpacing ([row, column] -> i is the column spacing)
    np.testing.assert_allclose(vol.spacing[:2], [float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0])], rtol=1e-6)
    # origin = ImagePositionPatient in RAS
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_allclose(vol.affine[:3, 3], ipp * [-1, -1, 1], atol=1e-4)


def test_compressed_and_uncompressed_agree():
    ref = read_volume(pydicom_file("MR_small.dcm")).data
    for name in ("MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
                 "MR_small_bigendian.dcm", "MR_small_implicit.dcm"):
        np.testing.assert_array_equal(read_volume(pydicom_file(name)).data, ref, err_msg=name)


def test_gzip_wrapped_dicom_reads(tmp_path):
    ref = read_volume(pydicom_file("MR_small.dcm"))
    np.testing.assert_array_equal(read_volume(pydicom_file("zipMR.gz")).data, ref.data)
    # and one we wrap ourselves
    wrapped = tmp_path / "scan.dcm.gz"
    wrapped.write_bytes(gzip.compress(pydicom_file("MR_small.dcm").read_bytes()))
    np.testing.assert_array_equal(read_volume(wrapped).data, ref.data)


def test_truncated_mr_gives_one_line_error(tmp_path, capsys):
    out = tmp_path / "out.nii.gz"
    assert main(["convert", str(pydicom_file("MR_truncated.dcm")), str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mrisr: error:") and "truncated" in err[0]
    assert not out.exists()


def test_dicomdir_test_tree_lists_its_series(capsys):
    root = pydicom_file("dicomdirtests")
    series = find_series(root)
    assert len(series) >= 7
    assert all(len(files) >= 1 for files in series.values())
    assert main(["info", str(root / "98892003")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--series" in err[0] and "FAST LOCALIZER" in err[0]


def test_real_localizer_with_three_orientations_is_refused(capsys):
    folder = pydicom_file("dicomdirtests/98892003/MR2")
    uid = pydicom.dcmread(folder / "4950").SeriesInstanceUID
    assert main(["info", str(folder), "--series", uid]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "3 image orientations" in err[0]
