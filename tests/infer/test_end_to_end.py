"""Scan file -> model -> scan file: DICOM series and 4D cine keep geometry, units and patient/study."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from mrisr.degrade.baselines import upscale_volume
from mrisr.infer import upscale_with_model
from mrisr.io import Volume, read_volume, write_volume
from mrisr.io.dicom import find_series
from mrisr.io.geometry import field_of_view_corners
from mrisr.models import build_model, save_model_file
from mrisr.models.registry import REGISTRY
from tests.conftest import oblique_affine
from tests.infer.test_volume import NO_CLIP, _bicubic_net


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_model_file(tmp_path_factory.mktemp("m") / "bicubic", _bicubic_net(), meta={"normalisation": NO_CLIP})


def _corners(vol):
    return field_of_view_corners(vol.affine, vol.spatial_shape)


def test_oblique_dicom_series_in_dicom_series_out(tmp_path, model_file):
    rng = np.random.default_rng(0)
    src = Volume(np.rint(rng.random((20, 16, 5)) * 3000 - 500), oblique_affine(), {"patient_id": "P7"})
    write_volume(src, tmp_path / "scan")
    scan = read_volume(tmp_path / "scan")
    out = upscale_with_model(scan, str(model_file), scale=2)
    write_volume(out, tmp_path / "sr")
    back = read_volume(tmp_path / "sr")
    assert back.shape == (40, 32, 5)
    np.testing.assert_allclose(_corners(back), _corners(scan), atol=1e-4)
    ref = upscale_volume(scan, [2, 2, 1], "bicubic").data  # the network is its bicubic baseline
    np.testing.assert_allclose(back.data, ref, atol=0.5 + 1e-3 * 3500)  # input units, stored as integers
    a = pydicom.dcmread(next(iter(find_series(tmp_path / "scan").values()))[0])
    b = pydicom.dcmread(next(iter(find_series(tmp_path / "sr").values()))[0])
    assert (b.PatientID, b.StudyInstanceUID, b.FrameOfReferenceUID) == (a.PatientID, a.StudyInstanceUID,
                                                                        a.FrameOfReferenceUID)
    assert b.SeriesInstanceUID != a.SeriesInstanceUID and b.SeriesDescription.endswith("[mrisr SR x2]")
    assert (b.Rows, b.Columns) == (32, 40)


def test_4d_cine_through_nifti_keeps_frames_and_time(tmp_path, model_file):
    rng = np.random.default_rng(1)
    affine = np.diag([1.4, 1.4, 8.0, 1.0])
    cine = Volume((rng.random((12, 10, 3, 4)) * 800).astype(np.float32), affine, {"time_spacing": 0.04})
    write_volume(cine, tmp_path / "cine.nii.gz")
    vol = read_volume(tmp_path / "cine.nii.gz")
    out = upscale_with_model(vol, str(model_file))
    write_volume(out, tmp_path / "sr.nii.gz")
    back = read_volume(tmp_path / "sr.nii.gz")
    assert back.shape == (24, 20, 3, 4) and back.meta["time_spacing"] == pytest.approx(0.04)
    np.testing.assert_allclose(_corners(back), _corners(vol), atol=1e-4)
    for t in range(4):  # every frame upscaled on its own
        ref = upscale_volume(vol.with_data(vol.data[..., t]), [2, 2, 1], "bicubic").data
        np.testing.assert_allclose(back.data[..., t], ref, atol=1e-3 * 800)


def test_3d_model_on_an_anisotropic_volume_refines_the_thick_axis(tmp_path):
    model = build_model("resnet3d", scale=3, anisotropic=True, **REGISTRY["resnet3d"].tiny).eval()
    path = save_model_file(tmp_path / "aniso", model)
    vol = Volume(np.random.default_rng(2).random((9, 7, 5)).astype(np.float32) * 100, np.diag([0.7, 0.7, 4.2, 1.0]))
    write_volume(vol, tmp_path / "v.nii.gz")
    out = upscale_with_model(read_volume(tmp_path / "v.nii.gz"), str(path), scale=3)
    assert out.shape == (9, 7, 15)
    np.testing.assert_allclose(out.spacing, (0.7, 0.7, 1.4), atol=1e-6)
    np.testing.assert_allclose(_corners(out), _corners(vol), atol=1e-4)
