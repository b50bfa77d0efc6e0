"""`mrisr info` and `mrisr convert` across formats."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from mrisr.cli import main
from mrisr.io import read_volume, write_volume
from tests.io.dicom.factory import pydicom_file


def test_info_prints_the_facts_of_a_dicom_file(capsys):
    assert main(["info", str(pydicom_file("examples_overlay.dcm"))]) == 0
    out = capsys.readouterr().out
    fields = {line.split("  ", 1)[0].strip(): line.split("  ", 1)[1].strip()
              for line in out.splitlines() if line.strip() and not line.startswith(" ")}
    assert fields["shape"] == "484 x 300 x 1"
    assert fields["spacing_mm"].startswith("0.72314 x 0.72314")
    assert fields["orientation"] == "LPS"
    assert fields["intensity_min"] == "0" and fields["intensity_max"] == "1123"
    assert fields["modality"] == "MR"
    assert fields["series_description"] == "marked lesion<MPR Collection>"
    assert fields["format"] == "dicom"


def test_info_json(capsys):
    assert main(["info", "--json", str(pydicom_file("MR_small.dcm"))]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [64, 64, 1]
    assert info["spacing_mm"] == pytest.approx([0.3125, 0.3125, 0.8])
    assert info["orientation"] == "LPS"
    assert (info["intensity_min"], info["intensity_max"]) == (127.0, 2145.0)
    assert info["modality"] == "MR"
    assert info["stored_dtype"] == "int16"
    assert np.asarray(info["affine"]).shape == (4, 4)


def test_info_nifti_orientation_code(tmp_path, capsys, phantom3d):
    ras = phantom3d.with_data(phantom3d.data, affine=np.diag([1.0, 1.0, 2.0, 1.0]))
    write_volume(ras, tmp_path / "ras.nii.gz")
    assert main(["info", "--json", str(tmp_path / "ras.nii.gz")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["orientation"] == "RAS" and info["spacing_mm"] == [1.0, 1.0, 2.0]


@pytest.mark.parametrize("suffix", [".png", ".npy", ".tif"])
def test_convert_dicom_to_2d_formats(tmp_path, suffix):
    src = pydicom_file("MR_small.dcm")
    out = tmp_path / f"slice{suffix}"
    assert main(["convert", str(src), str(out)]) == 0
    back = read_volume(out)
    expected = pydicom.dcmread(src).pixel_array.T.astype(np.float32)
    np.testing.assert_array_equal(back.data.reshape(expected.shape), expected)


def test_convert_png_to_dicom_and_back(tmp_path):
    from PIL import Image

    img = (np.arange(20 * 30).reshape(20, 30) * 97 % 65536).astype(np.uint16)
    Image.fromarray(img).save(tmp_path / "a.png")
    assert main(["convert", str(tmp_path / "a.png"), str(tmp_path / "series")]) == 0
    assert main(["convert", str(tmp_path / "series"), str(tmp_path / "b.png")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), img)


def test_convert_refuses_existing_output_before_reading(tmp_path, capsys):
    (tmp_path / "out.nii").write_text("precious")
    assert main(["convert", str(tmp_path / "missing.nii"), str(tmp_path / "out.nii")]) == 1
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "out.nii").read_text() == "precious"


def test_output_piped_into_a_reader_that_stops_early_is_not_an_error(tmp_path):
    import subprocess
    import sys

    from tests.io.dicom.factory import pydicom_file

    proc = subprocess.Popen([sys.executable, "-m", "mrisr", "info", str(pydicom_file("MR_small.dcm"))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head -0`: gone before mrisr prints anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""
