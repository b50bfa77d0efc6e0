"""The catalogue of offline real MRI (mrisr.data.sources) and the training-set build helpers that use it."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from mrisr.data.sources import (
    CATALOGUE,
    ROLES,
    ReservedDataError,
    check_not_reserved,
    find_sources,
    missing_sources,
)
from mrisr.errors import MrisrError
from mrisr.io.volume import Volume

BUILD = Path(__file__).resolve().parents[2] / "scripts" / "data" / "build_training_set.py"


@pytest.fixture(scope="module")
def build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_training_set", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_reserved_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home without ``.dipy`` and no ``DIPY_HOME``, so only what a test sets up is reserved."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DIPY_HOME", raising=False)
    return home


def test_catalogue_names_unique_and_fields_valid():
    names = [s.name for s in CATALOGUE]
    assert len(names) == len(set(names))
    for s in CATALOGUE:
        assert s.role in ROLES and s.kind in ("image", "labels", "tissue_map")
        assert all(v > 0 for v in s.voxel_mm) and s.provenance and s.package and s.anatomy
        assert s.path is None


def test_split_is_by_subject_never_one_subject_in_both_roles():
    roles_of: dict[str, set[str]] = {}
    for s in CATALOGUE:
        roles_of.setdefault(s.subject, set()).add(s.role)
    assert all(len(r) == 1 for r in roles_of.values()), roles_of
    heldout = {s.anatomy for s in CATALOGUE if s.role == "heldout"}
    train = {s.anatomy for s in CATALOGUE if s.role == "train"}
    assert "abdomen" in heldout - train  # an anatomy absent from training


def test_find_sources_returns_installed_files_with_their_declared_voxel_size():
    found = find_sources()
    assert any(s.name == "mni152_t1" for s in found)  # nilearn is a dev dependency
    for s in found:
        assert s.path is not None and s.path.is_file()
        if s.path.name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            zooms = nib.load(str(s.path)).header.get_zooms()[: len(s.voxel_mm)]
        elif s.path.suffix == ".dcm":
            import pydicom

            zooms = tuple(float(v) for v in pydicom.dcmread(s.path, stop_before_pixels=True).PixelSpacing)
        else:  # PNG: no geometry, mrisr reads it as 1 mm
            from mrisr.io.readers import read_volume

            zooms = read_volume(s.path).spacing
        assert np.allclose(zooms, s.voxel_mm, atol=1e-4), (s.name, zooms)


def test_find_sources_filters_by_role_and_kind():
    assert {s.role for s in find_sources(roles=["heldout"])} <= {"heldout"}
    train_images = find_sources(roles=["train"], kinds=["image"])
    assert train_images and all(s.role == "train" and s.kind == "image" for s in train_images)
    with pytest.raises(ValueError, match="unknown role"):
        find_sources(roles=["test"])  # type: ignore[list-item]


def test_missing_sources_lists_what_a_root_lacks(tmp_path: Path):
    (tmp_path / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz").write_bytes(b"x")
    roots = {"nilearn": tmp_path}
    found = find_sources(roots=roots)
    assert [s.name for s in found] == ["mni152_t1"] and found[0].path == tmp_path.resolve() / found[0].relpath
    missing = {s.name for s in missing_sources(roots=roots)}
    assert "mni152_t1" not in missing and {"colin27_1mm", "pydicom_abdomen"} <= missing


@pytest.mark.parametrize("folder", ["pydicom_data", "pydicom-data", "dipy", ".dipy"])
def test_paths_under_a_reserved_folder_name_are_refused(tmp_path: Path, folder: str, no_reserved_home: Path):
    path = tmp_path / "env" / folder / "data" / "scan.dcm"
    with pytest.raises(ReservedDataError, match="reserved for independent evaluation"):
        check_not_reserved(path)
    assert issubclass(ReservedDataError, MrisrError)  # the CLI prints it as one line


def test_an_installed_reserved_package_is_refused_wherever_it_lies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  no_reserved_home: Path):
    site = tmp_path / "site"
    pkg = site / "pydicom_data"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('reserved data must not be imported')\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    # A symlink with an innocent name into the package is resolved first, and the package is never imported.
    link = tmp_path / "innocent"
    link.symlink_to(pkg, target_is_directory=True)
    with pytest.raises(ReservedDataError, match="pydicom-data"):
        check_not_reserved(link / "MR.dcm")
    assert "pydicom_data" not in sys.modules


def test_the_dipy_data_home_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_reserved_home: Path):
    home = tmp_path / "somewhere" / "dipy_home_elsewhere"
    monkeypatch.setenv("DIPY_HOME", str(home))
    with pytest.raises(ReservedDataError, match="dipy data home"):
        check_not_reserved(home / "stanford_hardi" / "HARDI150.nii.gz")
    assert check_not_reserved(tmp_path / "ok.nii.gz") == (tmp_path / "ok.nii.gz").resolve()


def test_pydicoms_download_cache_of_pydicom_data_is_refused(no_reserved_home: Path):
    with pytest.raises(ReservedDataError, match="pydicom's cache"):
        check_not_reserved(no_reserved_home / ".pydicom" / "data" / "MR-SIEMENS-DICOM-WithOverlays.dcm")


def test_find_sources_refuses_a_catalogue_entry_inside_reserved_data(tmp_path: Path, no_reserved_home: Path):
    root = tmp_path / "pydicom_data" / "data"
    root.mkdir(parents=True)
    (root / "MR.dcm").write_bytes(b"x")
    entry = replace(CATALOGUE[0], root="fake", relpath="MR.dcm")
    with pytest.raises(ReservedDataError):
        find_sources(catalogue=[entry], roots={"fake": root})


def test_find_sources_never_returns_reserved_data():
    for s in find_sources():
        assert s.path is not None
        assert not {"pydicom_data", "pydicom-data", "dipy", ".dipy"} & set(s.path.parts)


# -- helpers of scripts/data/build_training_set.py ----------------------------------------------------------


def _oblique_volume(shape: tuple[int, ...] = (6, 7, 8)) -> Volume:
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    affine = np.array([[0.0, 0.0, -1.5, 10.0], [2.0, 0.0, 0.0, -5.0], [0.0, 1.0, 0.0, 3.0], [0, 0, 0, 1.0]])
    return Volume(data, affine)


@pytest.mark.parametrize("orientation, world_axis", [("sagittal", 0), ("coronal", 1), ("axial", 2)])
def test_reoriented_puts_the_orientation_normal_last_and_keeps_world_positions(build: ModuleType,
                                                                             orientation: str, world_axis: int):
    vol = _oblique_volume()
    new = build.reoriented(vol, orientation)
    # axis 2 of the new array moves along the requested world axis
    assert np.argmax(np.abs(new.affine[:3, 2])) == world_axis
    # every voxel keeps its world position: the value at world x is the same before and after
    rng = np.random.default_rng(0)
    for _ in range(20):
        ijk_new = [int(rng.integers(n)) for n in new.shape]
        world = new.voxel_to_world(np.array(ijk_new, dtype=float))
        ijk_old = np.linalg.solve(vol.affine[:3, :3], world - vol.affine[:3, 3])
        assert new.data[tuple(ijk_new)] == vol.data[tuple(np.rint(ijk_old).astype(int))]


def test_cropped_moves_the_affine_to_the_first_kept_voxel(build: ModuleType):
    vol = _oblique_volume()
    mask = np.zeros(vol.shape, dtype=bool)
    mask[2:4, 3, 4:6] = True
    new = build.cropped(vol, mask, margin=1)
    assert new.shape == (4, 3, 4)
    assert np.allclose(new.voxel_to_world(np.zeros(3)), vol.voxel_to_world(np.array([1.0, 2.0, 3.0])))
    assert new.data[0, 0, 0] == vol.data[1, 2, 3]


def test_at_voxel_size_resamples_to_the_requested_spacing_with_the_field_of_view_kept(build: ModuleType):
    from mrisr.io.geometry import field_of_view_corners

    vol = Volume(np.random.default_rng(0).random((30, 24, 12), dtype=np.float32), np.diag([1.0, 1.0, 1.0, 1.0]))
    new = build.at_voxel_size(vol, 1.5)
    assert new.shape == (20, 16, 8) and np.allclose(new.spacing, 1.5)
    assert np.allclose(field_of_view_corners(new.affine, new.shape), field_of_view_corners(vol.affine, vol.shape))


def test_labels_on_grid_samples_through_both_affines(build: ModuleType):
    labels = np.zeros((10, 12, 8), dtype=np.float32)
    labels[2:5, 3:9, 1:4] = 7
    src = Volume(labels, np.diag([2.0, 2.0, 2.0, 1.0]))
    # a 1 mm grid, flipped in x and shifted: voxel (i, j, k) is world (19 - i, j, k)
    target = Volume(np.zeros((20, 24, 16), dtype=np.float32),
                    np.array([[-1.0, 0, 0, 19.0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]]))
    out = build.labels_on_grid(src, target)
    assert out.dtype == np.int32 and out.shape == (20, 24, 16) and set(np.unique(out)) == {0, 7}
    for i, j, k in [(19 - 6, 8, 4), (19 - 4, 6, 2)]:
        world = target.voxel_to_world(np.array([i, j, k], dtype=float))
        assert out[i, j, k] == labels[tuple(np.rint(world / 2).astype(int))] == 7
    assert out[19, 0, 0] == 0


def test_split_seed_keeps_real_scans_out_of_val(build: ModuleType):
    from mrisr.data.splits import assign_splits

    patients = ["mni152", "inia19", "nibabel_example4d"] + [f"synth_{i:03d}" for i in range(6)]
    synthetic = {p for p in patients if p.startswith("synth_")}
    seed = build.split_seed(patients, synthetic, "val=2,train=rest", 0)
    split = assign_splits(patients, "val=2,train=rest", seed=seed)
    assert [p for p, s in split.items() if s == "val"] and all(
        p in synthetic for p, s in split.items() if s == "val")
