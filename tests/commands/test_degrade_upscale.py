"""`mrisr degrade` and `mrisr upscale` end to end on a small phantom NIfTI."""

import numpy as np
import pytest

from mrisr.cli import main
from mrisr.io import read_volume, write_volume
from mrisr.io.geometry import field_of_view_corners


@pytest.fixture
def scan(tmp_path, phantom3d):
    return write_volume(phantom3d, tmp_path / "hr.nii.gz")


def test_degrade_kspace_with_noise_writes_coarse_grid(tmp_path, scan, capsys):
    out = tmp_path / "lr.nii.gz"
    assert main(["degrade", str(scan), str(out), "--method", "kspace", "--scale", "2", "--window", "hamming",
                 "--snr", "30", "--seed", "5"]) == 0
    assert "kspace:scale=2,window=hamming;noise:snr=30" in capsys.readouterr().out
    hr, lr = read_volume(scan), read_volume(out)
    assert lr.shape == (24, 20, 12)
    np.testing.assert_allclose(field_of_view_corners(lr.affine, lr.shape), field_of_view_corners(hr.affine, hr.shape),
                               atol=1e-4)
    again = tmp_path / "lr2.nii.gz"
    main(["degrade", str(scan), str(again), "--method", "kspace", "--scale", "2", "--window", "hamming",
          "--snr", "30", "--seed", "5"])
    np.testing.assert_array_equal(read_volume(again).data, lr.data)
    # refuses to overwrite without --force
    assert main(["degrade", str(scan), str(out), "--scale", "2"]) == 1
    assert main(["degrade", str(scan), str(out), "--scale", "2", "--force"]) == 0


@pytest.mark.parametrize(
    ("args", "shape"),
    [
        (["--method", "slice", "--scale", "3"], (48, 40, 4)),
        (["--method", "slice", "--scale", "2", "--axes", "0"], (24, 40, 12)),  # --axes fills slice's one axis
        (["--method", "block", "--scale", "2", "--axes", "0,1,2"], (24, 20, 6)),
        (["--method", "bicubic:scale=4;noise:sigma=5"], (12, 10, 12)),
        (["--method", "noise", "--snr", "20"], (48, 40, 12)),
    ],
)
def test_degrade_methods(tmp_path, scan, args, shape):
    out = tmp_path / "lr.nii.gz"
    assert main(["degrade", str(scan), str(out), *args]) == 0
    assert read_volume(out).shape == shape


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "kspace"], "--scale is required"),
        (["--method", "bicubic", "--scale", "2", "--window", "hamming"], "--window applies"),
        (["--method", "kspace", "--scale", "2", "--window", "hann"], "unknown value 'hann'"),
        (["--method", "slice", "--scale", "2", "--axes", "0,1"], "one axis"),
        # 12 slices cannot hold one 13-slice block: a clear error, not a crop to nothing
        (["--method", "slice", "--scale", "13"], "too small for factors (1, 1, 13): axis 2"),
        (["--method", "noise", "--snr", "10", "--scale", "2"], "--scale 2 has no effect on noise:snr=10"),
        (["--scale", "2", "--seed", "-1"], "seed must be a non-negative integer, got -1"),
        # the CLI options are the step's fields, labelled as typed
        (["--method", "noise"], "--method noise needs --snr"),
        (["--method", "noise", "--snr", "10", "--axes", "1"], "--axes applies to --method kspace or bicubic or block or slice only"),
        (["--method", "kspace", "--scale", "2", "--snr", "ten"], "--snr must be a number or a range a..b, got 'ten'"),
        (["--method", "kspace", "--scale", "2", "--axes", "0+x"], "--axes must be spatial axes like 0+1 or 'all'"),
        (["--method", "kspace:scale=2", "--window", "hamming"], "--axes/--window apply to a single --method name"),
        (["--method", "bicubic:scale=2", "--scale", "3"], "bicubic: scale=2 conflicts with --scale 3"),
    ],
)
def test_degrade_errors(tmp_path, scan, capsys, args, message):
    assert main(["degrade", str(scan), str(tmp_path / "x.nii.gz"), *args]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("method", ["nearest", "bicubic", "zerofill"])
def test_upscale_baseline_restores_grid(tmp_path, scan, method):
    lr = tmp_path / "lr.nii.gz"
    sr = tmp_path / "sr.nii.gz"
    main(["degrade", str(scan), str(lr), "--scale", "2"])
    assert main(["upscale", str(lr), str(sr), "--method", method, "--scale", "2"]) == 0
    hr, out = read_volume(scan), read_volume(sr)
    assert out.shape == hr.shape
    np.testing.assert_allclose(out.affine, hr.affine, atol=1e-4)
    assert [h.get("op") for h in out.meta.get("history", [])] in ([], ["degrade", "upscale"])


def test_upscale_all_axes_and_errors(tmp_path, scan, capsys):
    out = tmp_path / "up.nii.gz"
    assert main(["upscale", str(scan), str(out), "--method", "linear", "--scale", "2", "--axes", "all"]) == 0
    assert read_volume(out).shape == (96, 80, 24)
    assert main(["upscale", str(scan), str(tmp_path / "b.nii.gz"), "--method", "linear"]) == 1
    assert "--scale is required" in capsys.readouterr().err
    assert main(["upscale", str(scan), str(tmp_path / "b.nii.gz"), "--method", "linear", "--scale", "2",
                 "--axis", "0"]) == 1  # was silently ignored
    assert "--axis applies to --model" in capsys.readouterr().err
    assert main(["upscale", str(scan), str(tmp_path / "c.nii.gz"), "--model", str(tmp_path / "missing")]) == 1
    assert "error" in capsys.readouterr().err


def test_upscale_nifti_to_dicom_like_keeps_patient_and_study(tmp_path, phantom3d, capsys):
    import pydicom

    from mrisr.io.dicom import find_series

    src = phantom3d.with_data(phantom3d.data[:, :, :4] * 1000, patient_id="P-0042", modality="MR")
    dcm = tmp_path / "scan"
    write_volume(src, dcm)
    ref = pydicom.dcmread(sorted(dcm.iterdir())[0], stop_before_pixels=True)
    nii = tmp_path / "scan.nii.gz"
    assert main(["convert", str(dcm), str(nii)]) == 0
    out = tmp_path / "sr"
    assert main(["upscale", str(nii), str(out), "--method", "bicubic", "--scale", "2", "--like", str(dcm)]) == 0
    (files,) = find_series(out).values()
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert ds.PatientID == "P-0042" and ds.StudyInstanceUID == ref.StudyInstanceUID
    assert ds.SeriesInstanceUID != ref.SeriesInstanceUID and "x2" in ds.SeriesDescription
    assert read_volume(out).shape == (96, 80, 4)
    # degrade takes --like too; --like needs a DICOM output; --series needs a folder input
    assert main(["degrade", str(nii), str(tmp_path / "lr"), "--scale", "2", "--like", str(dcm)]) == 0
    assert pydicom.dcmread(next((tmp_path / "lr").iterdir())).PatientID == "P-0042"
    capsys.readouterr()
    assert main(["upscale", str(nii), str(tmp_path / "x.nii.gz"), "--method", "linear", "--scale", "2",
                 "--like", str(dcm)]) == 1
    assert "--like applies to DICOM output" in capsys.readouterr().err
    for cmd in (["upscale", "--method", "linear"], ["degrade"]):
        assert main([cmd[0], str(nii), str(tmp_path / "y.nii.gz"), *cmd[1:], "--scale", "2", "--series", "1.2.3"]) == 1
        assert "not a folder" in capsys.readouterr().err
