"""DICOM derived-series writer: round trips, headers, stored ranges, 4D."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from mrisr.cli import main
from mrisr.errors import InputError, OutputExistsError
from mrisr.io import Volume, read_volume, write_volume
from mrisr.io.dicom import find_series, series_suffix, write_dicom_series
from tests.conftest import oblique_affine
from tests.io.dicom.factory import mr_slice, oblique_iop, pydicom_file, save


def _read_all(folder):
    return sorted((pydicom.dcmread(p) for p in folder.glob("*.dcm")), key=lambda d: int(d.InstanceNumber))


def test_roundtrip_nifti_dicom_nifti_keeps_affine_and_integer_voxels(tmp_path, phantom3d):
    integer = phantom3d.with_data(np.rint(phantom3d.data * 3.0) - 500.0)  # negative values too
    src = write_volume(integer, tmp_path / "in.nii.gz")
    assert main(["convert", str(src), str(tmp_path / "series") + "/"]) == 0
    assert main(["convert", str(tmp_path / "series"), str(tmp_path / "back.nii.gz")]) == 0
    back = read_volume(tmp_path / "back.nii.gz")
    np.testing.assert_allclose(back.affine, integer.affine, atol=1e-4)
    np.testing.assert_array_equal(back.data, integer.data)
    files = _read_all(tmp_path / "series")
    assert len(files) == integer.shape[2]
    assert files[0].PixelRepresentation == 1 and "RescaleSlope" not in files[0]


def test_derived_series_headers(tmp_path):
    src_path = pydicom_file("MR_small.dcm")
    src = pydicom.dcmread(src_path)
    vol = read_volume(src_path)
    vol.meta["history"] = [{"op": "degrade", "method": "kspace"}, {"op": "upscale", "method": "bicubic", "scale": 2}]
    write_volume(vol, tmp_path / "sr")
    (out,) = _read_all(tmp_path / "sr")
    assert out.SeriesInstanceUID != src.SeriesInstanceUID
    assert out.SOPInstanceUID != src.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert list(out.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    for kw in ("PatientName", "PatientID", "StudyInstanceUID", "FrameOfReferenceUID", "StudyDate"):
        assert out[kw].value == src[kw].value, kw
    assert out.SeriesDescription.endswith("[mrisr SR x2]")
    assert out.Modality == "MR"
    assert out.SOPClassUID == pydicom.uid.MRImageStorage
    # the original stored range: same dtype, same integers
    assert (out.BitsAllocated, out.PixelRepresentation) == (src.BitsAllocated, src.PixelRepresentation)
    np.testing.assert_array_equal(out.pixel_array, src.pixel_array)
    # geometry of the same grid is unchanged
    np.testing.assert_allclose([float(v) for v in out.ImagePositionPatient],
                               [float(v) for v in src.ImagePositionPatient], atol=1e-4)
    np.testing.assert_allclose([float(v) for v in out.PixelSpacing], [float(v) for v in src.PixelSpacing])
    # no overlays, private tags or other image-specific leftovers
    assert not any(elem.tag.is_private for elem in out)


def test_writer_recomputes_grid_attributes_for_a_finer_grid(tmp_path):
    from mrisr.io.geometry import rescaled_affine

    vol = read_volume(pydicom_file("MR_small.dcm"))
    fine = vol.with_data(np.repeat(np.repeat(vol.data, 2, axis=0), 2, axis=1),
                         affine=rescaled_affine(vol.affine, (2, 2, 1)),
                         history=[{"op": "upscale", "factors": [2, 2, 1]}])
    write_volume(fine, tmp_path / "fine")
    (out,) = _read_all(tmp_path / "fine")
    assert (out.Rows, out.Columns) == (128, 128)
    np.testing.assert_allclose([float(v) for v in out.PixelSpacing], [0.15625, 0.15625])
    assert float(out.SliceThickness) == pytest.approx(0.8)
    # same field of view: the first voxel centre moves back by a quarter of the old pixel in-plane
    src = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    expected = np.array([float(v) for v in src.ImagePositionPatient]) - 0.25 * 0.3125 * np.array([1, 1, 0])
    np.testing.assert_allclose([float(v) for v in out.ImagePositionPatient], expected, atol=1e-4)
    assert out.SeriesDescription.endswith("[mrisr SR x2]")
    back = read_volume(tmp_path / "fine")
    np.testing.assert_allclose(back.affine, fine.affine, atol=1e-4)
    np.testing.assert_array_equal(back.data, fine.data)


def test_float_data_without_source_is_scaled_into_uint16(tmp_path, phantom3d):
    # non-integer floats: slope/intercept chosen so the range fits uint16 without clipping
    vol = phantom3d.with_data(phantom3d.data * 0.731 - 120.25)
    write_dicom_series(vol, tmp_path / "s")
    files = _read_all(tmp_path / "s")
    assert files[0].PixelRepresentation == 0 and files[0].BitsAllocated == 16
    back = read_volume(tmp_path / "s")
    step = float(files[0].RescaleSlope)
    assert np.max(np.abs(back.data - vol.data)) <= step / 2 + 1e-3
    assert back.data.min() == pytest.approx(vol.data.min(), abs=step)
    assert back.data.max() == pytest.approx(vol.data.max(), abs=step)


def test_source_range_kept_and_widened_only_when_needed(tmp_path, rng):
    # A uint16 source with slope 0.5: an SR output that undershoots below zero needs int16, same rescale.
    iop = oblique_iop()
    pixels = rng.integers(0, 3000, size=(8, 9)).astype(np.int16)
    pixels[0, 0] = 0
    ds = mr_slice(pixels, (0, 0, 0), iop, (1.0, 1.0), series_uid="1.2.5", slope=0.5, intercept=0.0)
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    vol = read_volume(save(ds, tmp_path / "src.dcm"))
    undershoot = vol.with_data(vol.data - 3.0)
    write_volume(undershoot, tmp_path / "out")
    (out,) = _read_all(tmp_path / "out")
    assert float(out.RescaleSlope) == 0.5 and out.PixelRepresentation == 1
    np.testing.assert_array_equal(read_volume(tmp_path / "out").data, undershoot.data)
    # values that fit stay in the source's unsigned type
    write_volume(vol, tmp_path / "same")
    (same,) = _read_all(tmp_path / "same")
    assert same.PixelRepresentation == 0
    np.testing.assert_array_equal(same.pixel_array, pixels)


def test_normalised_data_with_a_source_header_is_not_collapsed(tmp_path):
    vol = read_volume(pydicom_file("MR_small.dcm"))
    norm = vol.with_data(vol.data / vol.data.max())  # [0, 1] with a slope-1 source header
    write_volume(norm, tmp_path / "n")
    back = read_volume(tmp_path / "n")
    assert np.max(np.abs(back.data - norm.data)) < 1e-4


def test_4d_volume_is_one_series_with_temporal_positions(tmp_path, rng):
    data = np.rint(rng.random((6, 5, 3, 4)) * 1000).astype(np.float32)
    vol = Volume(data, oblique_affine(), meta={"time_spacing": 0.04})
    write_volume(vol, tmp_path / "cine")
    files = _read_all(tmp_path / "cine")
    assert len(files) == 12
    assert len({f.SeriesInstanceUID for f in files}) == 1
    assert sorted({int(f.TemporalPositionIdentifier) for f in files}) == [1, 2, 3, 4]
    back = read_volume(tmp_path / "cine")
    assert back.shape == (6, 5, 3, 4)
    np.testing.assert_array_equal(back.data, data)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-4)
    assert back.meta["time_spacing"] == pytest.approx(0.04)


def test_2d_volume_writes_one_slice(tmp_path, phantom2d):
    write_volume(phantom2d.with_data(np.rint(phantom2d.data * 4095)), tmp_path / "one")
    assert len(list((tmp_path / "one").iterdir())) == 1
    back = read_volume(tmp_path / "one")
    assert back.shape == (64, 64, 1)
    np.testing.assert_array_equal(back.data[:, :, 0], np.rint(phantom2d.data * 4095))


def test_left_handed_affine_keeps_world_positions(tmp_path, phantom3d):
    flip = phantom3d.affine.copy()
    flip[:3, 2] *= -1  # k now runs against row x column
    vol = phantom3d.with_data(np.rint(phantom3d.data), affine=flip)
    write_volume(vol, tmp_path / "lh")
    back = read_volume(tmp_path / "lh")
    n = vol.shape[2]
    # same voxel at the same world position; k is reversed
    np.testing.assert_array_equal(back.data, vol.data[:, :, ::-1])
    ijk = np.array([[0, 0, 0], [3, 4, 5], [47, 39, 11]])
    ijk_back = ijk.copy()
    ijk_back[:, 2] = n - 1 - ijk[:, 2]
    np.testing.assert_allclose(back.voxel_to_world(ijk_back), vol.voxel_to_world(ijk), atol=1e-4)


def test_sheared_in_plane_affine_is_refused(tmp_path, phantom3d):
    aff = np.eye(4)
    aff[0, 1] = 0.3
    with pytest.raises(InputError, match="not orthogonal"):
        write_volume(phantom3d.with_data(phantom3d.data, affine=aff), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_refuses_non_empty_folder(tmp_path, phantom3d):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    with pytest.raises(OutputExistsError):
        write_dicom_series(phantom3d, tmp_path / "busy")
    # write_volume refuses an existing folder unless forced; --force never deletes files that are not DICOM
    with pytest.raises(OutputExistsError):
        write_volume(phantom3d, tmp_path / "busy")
    with pytest.raises(OutputExistsError, match="not DICOM"):
        write_volume(phantom3d, tmp_path / "busy", force=True)
    assert (tmp_path / "busy" / "keep.txt").read_text() == "x"
    (tmp_path / "busy" / "keep.txt").unlink()
    write_volume(phantom3d.with_data(np.rint(phantom3d.data)), tmp_path / "busy", force=True)
    assert len(find_series(tmp_path / "busy")) == 1


@pytest.mark.parametrize(
    ("history", "suffix"),
    [
        (None, " [mrisr]"),
        ([{"op": "degrade", "method": "kspace", "scale": 2}], " [mrisr]"),
        ([{"op": "upscale", "scale": 3}], " [mrisr SR x3]"),
        ([{"op": "upscale", "factors": [1, 1, 4]}], " [mrisr SR x4]"),
        ([{"op": "upscale", "factors": [2, 2, 3]}], " [mrisr SR x2x2x3]"),
        ([{"model": "srresnet", "scale": 2}], " [mrisr SR x2]"),
        ([{"op": "upscale", "factors": [1, 1, 1]}], " [mrisr SR x1]"),
    ],
)
def test_series_suffix(history, suffix):
    assert series_suffix({} if history is None else {"history": history}) == suffix


def test_description_suffix_not_stacked_and_fits_64_chars(tmp_path):
    vol = read_volume(pydicom_file("MR_small.dcm"))
    vol.meta["series_description"] = "x" * 70 + " [mrisr SR x2]"
    vol.meta["history"] = [{"op": "upscale", "scale": 2}]
    write_volume(vol, tmp_path / "d")
    (out,) = _read_all(tmp_path / "d")
    assert len(out.SeriesDescription) <= 64
    assert out.SeriesDescription.count("[mrisr") == 1


def test_slice_thickness_of_a_simulated_thick_slice_series(tmp_path, phantom3d):
    from mrisr.degrade.chain import build_degradation

    # phantom3d: 2.5 mm slice spacing; 3 slices into one with a 1-slice gap -> 5 mm profile, 7.5 mm spacing
    lr = build_degradation("slice:scale=3,gap=1")(phantom3d, seed=0)
    write_volume(lr, tmp_path / "thick/")
    ds = pydicom.dcmread(sorted((tmp_path / "thick").iterdir())[0])
    assert float(ds.SliceThickness) == pytest.approx(5.0, abs=1e-3)
    assert float(ds.SpacingBetweenSlices) == pytest.approx(7.5, abs=1e-3)
    # without a thick-slice history, thickness = spacing
    write_volume(phantom3d, tmp_path / "plain/")
    ds = pydicom.dcmread(sorted((tmp_path / "plain").iterdir())[0])
    assert float(ds.SliceThickness) == pytest.approx(2.5, abs=1e-3)
