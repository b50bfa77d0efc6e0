"""Acceptance: DICOM geometry against independent arithmetic (series folders and enhanced multi-frame)."""

from __future__ import annotations

import numpy as np
import pytest

from mrisr.cli import main
from mrisr.errors import InputError
from mrisr.io import read_volume
from mrisr.io.dicom import read_dicom_file, read_dicom_folder
from tests.io.dicom.factory import (
    enhanced_mr,
    lps_to_ras,
    mr_slice,
    oblique_iop,
    pixel_centres_lps,
    save,
)

ROWS, COLS, SLICES = 5, 7, 6
PIXEL_SPACING = (0.8, 1.3)  # [row spacing, column spacing]: deliberately different
SLICE_GAP = 2.7
ORIGIN = np.array([-41.25, 17.5, 63.0])


def _slice_values(k: int) -> np.ndarray:
    """Stored values of slice ``k`` (rows x columns) that encode slice, row and column."""
    r, c = np.mgrid[0:ROWS, 0:COLS]
    return (1000 * k + 10 * r + c).astype(np.int16)


def _write_oblique_series(folder, iop, rng, slope=None, intercept=None, descending=False):
    """Write SLICES files with shuffled names and shuffled InstanceNumbers; return true IPPs by slice."""
    normal = np.cross(iop[:3], iop[3:])
    ipps = [ORIGIN + k * SLICE_GAP * normal for k in range(SLICES)]
    series_uid = "1.2.826.0.1.3680043.8.498.77"
    names = rng.permutation(SLICES)
    numbers = rng.permutation(SLICES) + 1
    for k in range(SLICES):
        ds = mr_slice(_slice_values(k), ipps[k], iop, PIXEL_SPACING, series_uid=series_uid,
                      instance_number=int(numbers[k]), slope=slope, intercept=intercept)
        # file names sort in a different order than positions (and than InstanceNumber)
        save(ds, folder / f"img_{names[k]:02d}.dcm")
    return ipps


@pytest.mark.parametrize("angles", [(17.0, -11.0, 31.0), (0.0, 0.0, 0.0), (90.0, 0.0, 0.0), (-35.0, 52.0, 170.0)])
def test_oblique_series_world_positions_match_ipp_iop(tmp_path, rng, angles):
    iop = oblique_iop(angles)
    ipps = _write_oblique_series(tmp_path / "series", iop, rng)
    vol = read_volume(tmp_path / "series")
    assert vol.shape == (COLS, ROWS, SLICES)

    # Through NIfTI and back, as a user would convert it.
    nii = tmp_path / "out.nii.gz"
    assert main(["convert", str(tmp_path / "series"), str(nii)]) == 0
    back = read_volume(nii)

    ijk = np.stack(np.meshgrid(np.arange(COLS), np.arange(ROWS), np.arange(SLICES), indexing="ij"), axis=-1)
    for v in (vol, back):
        world = v.voxel_to_world(ijk)
        for k in range(SLICES):
            expected = lps_to_ras(pixel_centres_lps(ipps[k], iop, PIXEL_SPACING, ROWS, COLS))
            np.testing.assert_allclose(world[:, :, k], expected, atol=1e-4)
            # voxel values follow the geometry: slice k holds the pixels written at IPP k, [c, r] = [r, c].T
            np.testing.assert_array_equal(v.data[:, :, k], _slice_values(k).T.astype(np.float32))


def test_sorting_ignores_names_and_instance_numbers_even_when_reversed(tmp_path, rng):
    # Slices acquired "downwards": InstanceNumber 1 is the highest position along the normal.
    iop = oblique_iop((5.0, 20.0, -40.0))
    normal = np.cross(iop[:3], iop[3:])
    for k in range(SLICES):
        ipp = ORIGIN + k * SLICE_GAP * normal
        ds = mr_slice(_slice_values(k), ipp, iop, PIXEL_SPACING, series_uid="1.2.3.4",
                      instance_number=SLICES - k)
        save(ds, tmp_path / "s" / f"{SLICES - k:03d}.dcm")
    vol = read_dicom_folder(tmp_path / "s")
    for k in range(SLICES):
        np.testing.assert_array_equal(vol.data[:, :, k], _slice_values(k).T)
    np.testing.assert_allclose(vol.spacing, (PIXEL_SPACING[1], PIXEL_SPACING[0], SLICE_GAP), atol=1e-6)
    assert len(vol.meta["dicom_headers"]) == SLICES
    assert [float(h.ImagePositionPatient[0]) for h in vol.meta["dicom_headers"]] == pytest.approx(
        [float(ORIGIN[0] + k * SLICE_GAP * normal[0]) for k in range(SLICES)], abs=1e-6)


def test_rescale_applied_per_file(tmp_path, rng):
    iop = oblique_iop()
    _write_oblique_series(tmp_path / "s", iop, rng, slope=0.5, intercept=-20.0)
    vol = read_volume(tmp_path / "s")
    np.testing.assert_allclose(vol.data[:, :, 3], _slice_values(3).T * 0.5 - 20.0)
    assert vol.meta["rescale"] == (0.5, -20.0)
    assert vol.meta["stored_dtype"] == "int16"


def test_slice_spacing_comes_from_positions_not_thickness(tmp_path, rng):
    iop = oblique_iop()
    _write_oblique_series(tmp_path / "s", iop, rng)  # SliceThickness is 5.0 in every file
    vol = read_volume(tmp_path / "s")
    assert vol.spacing[2] == pytest.approx(SLICE_GAP, abs=1e-6)


def test_single_file_geometry(tmp_path):
    iop = oblique_iop()
    path = save(mr_slice(_slice_values(0), ORIGIN, iop, PIXEL_SPACING, series_uid="1.2.3",
                         SpacingBetweenSlices=4.0), tmp_path / "one.dcm")
    vol = read_dicom_file(path)
    assert vol.shape == (COLS, ROWS, 1)
    ijk = np.stack(np.meshgrid(np.arange(COLS), np.arange(ROWS), [0], indexing="ij"), axis=-1)
    expected = lps_to_ras(pixel_centres_lps(ORIGIN, iop, PIXEL_SPACING, ROWS, COLS))
    np.testing.assert_allclose(vol.voxel_to_world(ijk)[:, :, 0], expected, atol=1e-4)
    # the slice axis follows the normal, scaled by SpacingBetweenSlices for a lone slice
    np.testing.assert_allclose(vol.affine[:3, 2], lps_to_ras(np.cross(iop[:3], iop[3:]) * 4.0), atol=1e-6)


def _enhanced_case(n=5, angles=(23.0, 8.0, -47.0), temporal=None):
    iop = oblique_iop(angles)
    normal = np.cross(iop[:3], iop[3:])
    n_pos = n if temporal is None else n // len(set(temporal))
    true_ipps = [ORIGIN + k * SLICE_GAP * normal for k in range(n_pos)]
    frames = []
    ipps = []
    for i in range(n):
        k = i % n_pos
        frames.append(_slice_values(k) + (0 if temporal is None else 100 * temporal[i]))
        ipps.append(true_ipps[k])
    return iop, np.array(frames, dtype=np.int16), ipps, true_ipps


@pytest.mark.parametrize("orientation_per_frame", [False, True])
def test_enhanced_multiframe_oblique_geometry(tmp_path, orientation_per_frame):
    iop, frames, ipps, true_ipps = _enhanced_case()
    # store the frames in a shuffled order: their positions, not their frame numbers, decide k
    perm = np.array([3, 0, 4, 1, 2])
    ds = enhanced_mr(frames[perm], [ipps[p] for p in perm], iop, PIXEL_SPACING, slope=2.0, intercept=-7.0,
                     orientation_per_frame=orientation_per_frame)
    path = save(ds, tmp_path / "enhanced.dcm")
    vol = read_volume(path)
    assert vol.shape == (COLS, ROWS, 5)
    ijk = np.stack(np.meshgrid(np.arange(COLS), np.arange(ROWS), np.arange(5), indexing="ij"), axis=-1)
    world = vol.voxel_to_world(ijk)
    for k in range(5):
        expected = lps_to_ras(pixel_centres_lps(true_ipps[k], iop, PIXEL_SPACING, ROWS, COLS))
        np.testing.assert_allclose(world[:, :, k], expected, atol=1e-4)
        np.testing.assert_allclose(vol.data[:, :, k], _slice_values(k).T * 2.0 - 7.0)
    assert vol.meta["modality"] == "MR"
    assert vol.meta["series_description"] == "enhanced oblique"
    assert "PixelData" not in vol.meta["dicom_headers"][0]


def test_enhanced_multiframe_with_time_is_4d(tmp_path):
    temporal = [1, 1, 1, 2, 2, 2]
    iop, frames, ipps, _ = _enhanced_case(n=6, temporal=temporal)
    perm = np.array([5, 2, 0, 3, 1, 4])
    ds = enhanced_mr(frames[perm], [ipps[p] for p in perm], iop, PIXEL_SPACING,
                     temporal_index=[temporal[p] for p in perm])
    vol = read_volume(save(ds, tmp_path / "cine.dcm"))
    assert vol.shape == (COLS, ROWS, 3, 2)
    for t in range(2):
        for k in range(3):
            np.testing.assert_array_equal(vol.data[:, :, k, t], (_slice_values(k) + 100 * (t + 1)).T)


def test_enhanced_multiframe_in_a_folder(tmp_path):
    iop, frames, ipps, _ = _enhanced_case()
    save(enhanced_mr(frames, ipps, iop, PIXEL_SPACING), tmp_path / "f" / "enh.dcm")
    (tmp_path / "f" / "README.txt").write_text("not an image")
    vol = read_volume(tmp_path / "f")
    assert vol.shape == (COLS, ROWS, 5)


def test_sheared_stack_keeps_true_positions(tmp_path):
    # Positions drift in-plane from slice to slice (as with a gantry tilt): the affine keeps the shear.
    iop = oblique_iop((0.0, 0.0, 0.0))
    normal = np.cross(iop[:3], iop[3:])
    drift = np.array(iop[3:]) * 0.9
    ipps = [ORIGIN + k * (SLICE_GAP * normal + drift) for k in range(SLICES)]
    for k in range(SLICES):
        save(mr_slice(_slice_values(k), ipps[k], iop, PIXEL_SPACING, series_uid="1.9"), tmp_path / "s" / f"{k}.dcm")
    vol = read_volume(tmp_path / "s")
    for k in range(SLICES):
        expected = lps_to_ras(np.asarray(ipps[k]))
        np.testing.assert_allclose(vol.voxel_to_world(np.array([0, 0, k])), expected, atol=1e-4)


def test_missing_geometry_in_a_series_is_refused(tmp_path):
    for k in range(3):
        ds = mr_slice(_slice_values(k), ORIGIN, oblique_iop(), PIXEL_SPACING, series_uid="1.9")
        del ds.ImagePositionPatient
        save(ds, tmp_path / "s" / f"{k}.dcm")
    with pytest.raises(InputError, match="ImagePositionPatient"):
        read_volume(tmp_path / "s")


@pytest.mark.parametrize("angles", [(17.0, -11.0, 31.0), (0.0, 0.0, 0.0), (-35.0, 52.0, 170.0)])
def test_frame_affine_maps_pixels_to_their_centres_and_grid_geometry_inverts_it(angles):
    from mrisr.io.dicom.geometry import frame_affine, grid_geometry, slice_normal

    iop = oblique_iop(angles)
    normal = slice_normal(iop)
    assert np.linalg.norm(normal) == pytest.approx(1.0) and abs(normal @ iop[:3]) < 1e-12
    k_step = SLICE_GAP * normal
    affine = frame_affine(iop, np.asarray(PIXEL_SPACING), k_step, ORIGIN)
    # voxel (c, r, k) -> RAS, against independent per-pixel arithmetic in LPS
    for k in (0, 3):
        expected = lps_to_ras(pixel_centres_lps(ORIGIN + k * k_step, iop, PIXEL_SPACING, ROWS, COLS))
        c, r = np.meshgrid(np.arange(COLS), np.arange(ROWS), indexing="ij")
        index = np.stack([c, r, np.full_like(c, k), np.ones_like(c)], axis=-1).astype(np.float64)
        np.testing.assert_allclose((index @ affine.T)[..., :3], expected, atol=1e-9)
    back_iop, back_spacing, back_step, spacing = grid_geometry(affine)
    np.testing.assert_allclose(back_iop, iop, atol=1e-12)
    np.testing.assert_allclose(back_spacing, PIXEL_SPACING, atol=1e-12)
    np.testing.assert_allclose(back_step, k_step, atol=1e-12)
    assert spacing == pytest.approx(SLICE_GAP)


def test_grid_geometry_refuses_a_sheared_image_plane():
    from mrisr.io.dicom.geometry import grid_geometry

    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    affine[0, 1] = 0.3  # column j leans towards i: the image plane is no longer orthogonal
    with pytest.raises(InputError, match="not orthogonal"):
        grid_geometry(affine)
