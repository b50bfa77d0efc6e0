import nibabel as nib
import numpy as np
import pytest

from mrisr.cli import main
from mrisr.errors import InputError, OutputExistsError
from mrisr.io import read_volume, write_volume


def test_nifti_roundtrip_keeps_affine_and_voxels(tmp_path, phantom3d):
    out = write_volume(phantom3d, tmp_path / "a.nii.gz")
    back = read_volume(out)
    np.testing.assert_allclose(back.affine, phantom3d.affine, atol=1e-4)
    np.testing.assert_array_equal(back.data, phantom3d.data)


def test_nifti_scaling_applied(tmp_path):
    img = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    img.header.set_slope_inter(2.0, -5.0)
    nib.save(img, tmp_path / "s.nii")
    vol = read_volume(tmp_path / "s.nii")
    np.testing.assert_array_equal(vol.data, np.arange(24).reshape(2, 3, 4) * 2.0 - 5.0)


def test_nifti_4d_time_last(tmp_path):
    data = np.random.default_rng(0).random((5, 6, 3, 7)).astype(np.float32)
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_zooms((1, 1, 2, 0.05))
    nib.save(img, tmp_path / "cine.nii.gz")
    vol = read_volume(tmp_path / "cine.nii.gz")
    assert vol.shape == (5, 6, 3, 7)
    assert vol.meta["time_spacing"] == pytest.approx(0.05)
    back = read_volume(write_volume(vol, tmp_path / "cine2.nii.gz"))
    assert back.meta["time_spacing"] == pytest.approx(0.05)


def test_refuses_to_overwrite_without_force(tmp_path, phantom3d):
    out = write_volume(phantom3d, tmp_path / "a.nii")
    before = out.read_bytes()
    with pytest.raises(OutputExistsError):
        write_volume(phantom3d.with_data(phantom3d.data * 2), out)
    assert out.read_bytes() == before
    write_volume(phantom3d.with_data(phantom3d.data * 2), out, force=True)
    assert read_volume(out).data.max() == pytest.approx(2 * phantom3d.data.max())


def test_nan_voxels_refused(tmp_path):
    data = np.ones((4, 4, 4), dtype=np.float32)
    data[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii")
    with pytest.raises(InputError, match="NaN"):
        read_volume(tmp_path / "nan.nii")


def test_cli_info_and_convert(tmp_path, phantom3d, capsys):
    src = write_volume(phantom3d, tmp_path / "in.nii.gz")
    assert main(["info", str(src)]) == 0
    assert "orientation" in capsys.readouterr().out
    assert main(["convert", str(src), str(tmp_path / "out.nii")]) == 0
    assert main(["convert", str(src), str(tmp_path / "out.nii")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mrisr: error:") and "--force" in err[0]
