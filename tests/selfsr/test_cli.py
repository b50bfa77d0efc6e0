"""`mrisr selfsr`, `mrisr train --self-supervised` and `mrisr upscale --model` with such a model, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mrisr.cli import main
from mrisr.io import read_volume, write_volume
from mrisr.io.geometry import field_of_view_corners
from mrisr.io.volume import Volume
from tests.selfsr.conftest import thick

STEPS = ["--steps", "8", "--quiet"]


@pytest.fixture
def scan(tmp_path: Path, thick_volume: Volume) -> Path:
    return write_volume(thick_volume, tmp_path / "thick.nii.gz")


def test_selfsr_nifti(tmp_path: Path, scan: Path, truth_volume: Volume, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sr.nii.gz"
    model = tmp_path / "net.safetensors"
    assert main(["selfsr", str(scan), str(out), *STEPS, "--save-model", str(model)]) == 0
    said = capsys.readouterr().out
    assert "8 steps" in said and "reproduce with --steps 8 --seed 0" in said
    sr = read_volume(out)
    assert sr.shape == truth_volume.shape  # 10 slices of 4 mm -> 40 of 1 mm
    np.testing.assert_allclose(sr.affine, truth_volume.affine, atol=1e-4)
    meta = json.loads(model.with_suffix(".json").read_text())
    assert meta["self_supervised"]["steps"] == 8 and meta["degradation"]["thickness_mm"] == 4.0
    # the saved network through `mrisr upscale` gives the same voxels as selfsr wrote
    again = tmp_path / "again.nii.gz"
    assert main(["upscale", str(scan), str(again), "--model", str(model)]) == 0
    np.testing.assert_allclose(read_volume(again).data, sr.data, atol=1e-3)
    # and --init from it trains on
    assert main(["selfsr", str(scan), str(tmp_path / "init.nii.gz"), *STEPS, "--init", str(model)]) == 0


def test_selfsr_target_spacing_and_non_integer(tmp_path: Path, thick_volume: Volume) -> None:
    vol = Volume(thick_volume.data[:, :, :9], np.diag([1.0, 1.0, 3.3, 1.0]))
    src = write_volume(vol, tmp_path / "t33.nii.gz")
    out = tmp_path / "sr.nii.gz"
    assert main(["selfsr", str(src), str(out), *STEPS, "--target-spacing", "0.8"]) == 0
    sr = read_volume(out)
    assert sr.shape[2] == round(9 * 3.3 / 0.8)  # 37
    assert sr.spacing[2] == pytest.approx(9 * 3.3 / 37, rel=1e-5)
    np.testing.assert_allclose(field_of_view_corners(sr.affine, sr.shape), field_of_view_corners(vol.affine, vol.shape),
                               atol=1e-4)


def test_selfsr_dicom_in_dicom_out(tmp_path: Path, thick_volume: Volume) -> None:
    series = tmp_path / "thick_series"
    write_volume(thick_volume, series)
    out = tmp_path / "sr_series"
    assert main(["selfsr", str(series), str(out), *STEPS, "--slice-thickness", "4"]) == 0
    lr, sr = read_volume(series), read_volume(out)
    assert sr.shape == (40, 40, 40) and len(list(out.iterdir())) == 40
    np.testing.assert_allclose(sr.spacing, (1.0, 1.0, 1.0), atol=1e-4)
    np.testing.assert_allclose(field_of_view_corners(sr.affine, sr.shape), field_of_view_corners(lr.affine, lr.shape),
                               atol=1e-3)
    assert float(sr.meta["dicom_headers"][0].SliceThickness) == pytest.approx(1.0)


def test_train_self_supervised_folder(tmp_path: Path, truth_volume: Volume) -> None:
    folder = tmp_path / "lr_only"
    folder.mkdir()
    write_volume(thick(truth_volume, 4), folder / "a.nii.gz")
    flipped = Volume(truth_volume.data[::-1].copy(), truth_volume.affine)
    write_volume(thick(flipped, 4), folder / "b.nii.gz")
    model = tmp_path / "dataset.safetensors"
    assert main(["train", "--self-supervised", str(folder), "--out", str(model), "--steps", "6"]) == 0
    meta = json.loads(model.with_suffix(".json").read_text())
    assert meta["training_data"]["scans"] == 2 and meta["self_supervised"]["geometry"] == "through_plane_2d"
    out = tmp_path / "up.nii.gz"
    assert main(["upscale", str(folder / "a.nii.gz"), str(out), "--model", str(model)]) == 0
    assert read_volume(out).shape == (40, 40, 40)


@pytest.mark.parametrize(("argv", "message"), [
    (["--steps", "0"], "--steps must be >= 1"),
    (["--budget", "0"], "--budget must be a positive number"),
    (["--slice-thickness", "-2"], "--slice-thickness must be a positive number"),
    (["--slice-thickness", "3", "--gap", "2"], "must equal the slice spacing"),
    (["--axis", "0", "--steps", "2"], "not coarser"),
    (["--init", "nonexistent-model", "--steps", "2"], "no model file"),
])
def test_selfsr_errors_one_line(tmp_path: Path, scan: Path, argv: list[str], message: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.nii.gz"
    assert main(["selfsr", str(scan), str(out), "--quiet", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mrisr: error:") and message in err[0], err
    assert not out.exists()


def test_other_refusals(tmp_path: Path, scan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    iso = write_volume(Volume(np.ones((8, 8, 8), np.float32), np.eye(4)), tmp_path / "iso.nii.gz")
    assert main(["selfsr", str(iso), str(tmp_path / "o.nii.gz"), *STEPS]) == 1
    assert "no single coarsest axis" in capsys.readouterr().err
    existing = tmp_path / "exists.nii.gz"
    existing.write_bytes(b"x")
    assert main(["selfsr", str(scan), str(existing), *STEPS]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["train", str(scan), "--steps", "3"]) == 1
    assert "applies to --self-supervised only" in capsys.readouterr().err
    model = tmp_path / "m.safetensors"
    assert main(["selfsr", str(scan), str(tmp_path / "o2.nii.gz"), *STEPS, "--save-model", str(model)]) == 0
    assert main(["upscale", str(scan), str(tmp_path / "o3.nii.gz"), "--model", str(model), "--scale", "2"]) == 1
    assert "--scale does not apply" in capsys.readouterr().err
