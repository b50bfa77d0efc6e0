"""NIfTI variants: .hdr/.img pairs, Analyze (refused), CIFTI (refused), sheared affines, no orientation."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mrisr.errors import InputError
from mrisr.io import Volume, read_volume, write_volume

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"


@pytest.fixture
def voxels():
    return np.arange(60, dtype=np.int16).reshape(3, 4, 5)


def test_header_image_pair_reads_from_either_half(tmp_path, voxels):
    affine = np.diag([2.0, -1.5, 3.0, 1.0])
    affine[:3, 3] = [10, 20, -5]
    nib.save(nib.Nifti1Pair(voxels, affine), tmp_path / "pair.img")
    for name in ("pair.hdr", "pair.img"):
        vol = read_volume(tmp_path / name)
        assert np.array_equal(vol.data, voxels) and np.allclose(vol.affine, affine)
    (tmp_path / "pair.img").unlink()
    with pytest.raises(InputError, match=r"image file pair\.img is missing"):
        read_volume(tmp_path / "pair.hdr")


def test_analyze_is_refused_with_the_reason(tmp_path, voxels):
    nib.save(nib.AnalyzeImage(voxels, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "ana.img")
    for name in ("ana.hdr", "ana.img"):
        with pytest.raises(InputError, match=r"Analyze 7\.5 .*left"):
            read_volume(tmp_path / name)


@pytest.mark.skipif(not (NIBABEL_DATA / "row_major.dconn.nii").is_file(), reason="nibabel test data not installed")
def test_cifti_is_refused_as_not_a_volume():
    with pytest.raises(InputError, match="CIFTI"):
        read_volume(NIBABEL_DATA / "row_major.dconn.nii")


def test_sheared_affine_is_stored_as_sform_only(tmp_path):
    affine = np.array([[1.0, 0.3, 0, 5], [0, 1.0, 0, -2], [0, 0, 2.0, 7], [0, 0, 0, 1]])
    write_volume(Volume(np.ones((4, 5, 6), np.float32), affine), tmp_path / "s.nii.gz")
    img = nib.load(tmp_path / "s.nii.gz")
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 0
    assert np.allclose(read_volume(tmp_path / "s.nii.gz").affine, affine)
    # an ordinary (rotation + scaling) affine keeps both
    write_volume(Volume(np.ones((4, 5, 6), np.float32), np.diag([1.0, 2.0, 3.0, 1.0])), tmp_path / "r.nii.gz")
    assert int(nib.load(tmp_path / "r.nii.gz").header["qform_code"]) == 1


def test_missing_orientation_is_a_warning(tmp_path, voxels, caplog):
    img = nib.Nifti1Image(voxels, None)
    img.set_sform(np.eye(4), code=0)
    img.set_qform(np.eye(4), code=0)
    nib.save(img, tmp_path / "bare.nii")
    with caplog.at_level(logging.WARNING):
        vol = read_volume(tmp_path / "bare.nii")
    assert vol.shape == voxels.shape and "orientation is unknown" in caplog.text


@pytest.mark.parametrize(("unit", "to_mm"), [("meter", 1000.0), ("micron", 1e-3), ("mm", 1.0)])
def test_spatial_units_become_millimetres(tmp_path, voxels, unit, to_mm):
    affine = np.diag([0.1, 0.1, 0.5, 1.0])
    affine[:3, 3] = [1.0, 2.0, 3.0]
    img = nib.Nifti1Image(voxels, affine)
    img.header.set_xyzt_units(xyz=unit)
    nib.save(img, tmp_path / "u.nii")
    vol = read_volume(tmp_path / "u.nii")
    np.testing.assert_allclose(vol.affine[:3], affine[:3] * to_mm)
    write_volume(vol, tmp_path / "back.nii")  # written in mm, read back unchanged
    np.testing.assert_allclose(read_volume(tmp_path / "back.nii").affine, vol.affine)


def test_gzip_claiming_more_voxels_than_it_holds_is_refused_before_allocating(tmp_path):
    import gzip

    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((1200, 1200, 1200))  # 3.5 GB of int16 (14 GB as float32), under the voxel limit
    raw = hdr.binaryblock + b"\0" * 4 + b"\0" * 1000
    (tmp_path / "claim.nii.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(InputError, match="the compressed file holds 1352"):
        read_volume(tmp_path / "claim.nii.gz")


def test_multi_member_gzip_reads(tmp_path, voxels):
    import gzip

    nib.save(nib.Nifti1Image(voxels, np.eye(4)), tmp_path / "plain.nii")
    raw = (tmp_path / "plain.nii").read_bytes()
    # bgzip-style: several gzip members; the trailer holds only the last member's size
    (tmp_path / "multi.nii.gz").write_bytes(gzip.compress(raw[:200]) + gzip.compress(raw[200:]))
    assert np.array_equal(read_volume(tmp_path / "multi.nii.gz").data, voxels)


@pytest.mark.parametrize(("name", "compress"), [("scan", False), ("scan", True), ("scan.nii", True),
                                                ("scan.nii.gz", False), ("scan.dcm", False)])
def test_content_not_name_decides(tmp_path, voxels, name, compress):
    import gzip

    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    nib.save(nib.Nifti1Image(voxels, affine), tmp_path / "ref.nii")
    raw = (tmp_path / "ref.nii").read_bytes()
    (tmp_path / name).write_bytes(gzip.compress(raw) if compress else raw)
    vol = read_volume(tmp_path / name)
    assert np.array_equal(vol.data, voxels) and np.allclose(vol.affine, affine)


def test_nifti2_by_content(tmp_path, voxels):
    nib.save(nib.Nifti2Image(voxels, np.eye(4)), tmp_path / "n2.nii")
    (tmp_path / "n2").write_bytes((tmp_path / "n2.nii").read_bytes())
    assert np.array_equal(read_volume(tmp_path / "n2").data, voxels)


def test_freesurfer_mgz_reads_with_its_affine(tmp_path, voxels):
    affine = np.array([[-1.0, 0, 0, 128], [0, 0, 1, -128], [0, -1, 0, 128], [0, 0, 0, 1]])
    nib.save(nib.MGHImage(voxels.astype(np.float32), affine), tmp_path / "brain.mgz")
    vol = read_volume(tmp_path / "brain.mgz")
    assert vol.meta["format"] == "mgh" and np.array_equal(vol.data, voxels)
    np.testing.assert_allclose(vol.affine, nib.load(tmp_path / "brain.mgz").affine)
    write_volume(vol, tmp_path / "brain.nii.gz")
    np.testing.assert_allclose(read_volume(tmp_path / "brain.nii.gz").affine, vol.affine, atol=1e-5)


@pytest.mark.parametrize(("name", "kind"), [("scan.PAR", "PAR/REC"), ("scan.mnc", "MINC"), ("scan.nrrd", "NRRD")])
def test_other_formats_are_named(tmp_path, name, kind):
    (tmp_path / name).write_bytes(b"# some header\n" * 10)
    with pytest.raises(InputError, match=f"{kind} files are not read"):
        read_volume(tmp_path / name)
