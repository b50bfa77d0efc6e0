"""Case discovery: names, folders of scans vs one DICOM series, masks matched by case name."""

import numpy as np
import pytest

from mrisr.errors import InputError
from mrisr.evaluate import case_mask, case_name, list_cases
from mrisr.io import Volume, write_volume


@pytest.fixture
def hr_folder(tmp_path):
    folder = tmp_path / "hr"
    for i in range(3):
        write_volume(Volume(np.full((6, 5, 4), float(i + 1)), np.eye(4)), folder / f"case{i}.nii.gz")
    return folder


def test_list_cases(tmp_path, hr_folder):
    assert sorted(list_cases(hr_folder)) == ["case0", "case1", "case2"]
    assert list(list_cases(hr_folder / "case0.nii.gz")) == ["case0"]
    series = tmp_path / "series"
    series.mkdir()
    (series / "IM0001").write_bytes(b"")
    assert list_cases(series) == {"series": series}


def test_case_names_and_clashes(tmp_path, hr_folder):
    from pathlib import Path

    assert case_name(Path("a/b.NII.GZ")) == "b" and case_name(Path("IM1.dcm")) == "IM1"
    assert case_name(Path("series_folder")) == "series_folder"
    write_volume(Volume(np.ones((4, 4, 4)), np.eye(4)), hr_folder / "case0.nii")
    with pytest.raises(InputError, match="two scans named 'case0'"):
        list_cases(hr_folder)
    with pytest.raises(InputError, match="no such file or folder"):
        list_cases(tmp_path / "nothing")


def test_case_mask_modes(tmp_path):
    ref = np.zeros((8, 8, 4))
    ref[2:6, 2:6] = 10.0
    assert case_mask(None, "c", ref, 3) is None and case_mask("none", "c", ref, 3) is None
    auto = case_mask("auto", "c", ref, 3)
    assert auto is not None and auto.sum() == 4 * 4 * 4
    masks = tmp_path / "masks"
    write_volume(Volume((ref > 0).astype(np.float32), np.eye(4)), masks / "c.nii.gz")
    from_folder = case_mask(str(masks), "c", ref, 3)
    assert from_folder is not None and np.array_equal(from_folder, ref > 0)
    with pytest.raises(InputError, match="no mask named 'other'"):
        case_mask(str(masks), "other", ref, 3)
    with pytest.raises(InputError, match="has shape"):
        case_mask(str(masks / "c.nii.gz"), "c", np.zeros((8, 8, 5)), 3)
