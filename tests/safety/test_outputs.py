"""Outputs never overwrite an input, stale temporaries of a killed writer are removed by the next write of
the same target, and --like refuses a volume that does not lie in the reference scan's geometry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mrisr.cli import main
from mrisr.io import read_volume, write_volume
from mrisr.io.atomic import atomic_path, remove_stale_temporaries
from tests.safety.conftest import checksums

UPSCALE = ["--method", "bicubic", "--scale", "2"]
COMMANDS = {"upscale": UPSCALE, "degrade": ["--method", "bicubic", "--scale", "2"], "convert": []}


def _refused(capsys, *words: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mrisr: error: "), err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_output_equal_to_the_input_file_is_refused_even_with_force(nifti_scan: Path, capsys, command: str) -> None:
    before = checksums(nifti_scan)
    assert main([command, str(nifti_scan), str(nifti_scan), *COMMANDS[command], "--force"]) == 1
    _refused(capsys, "is the input", "never overwritten")
    assert checksums(nifti_scan) == before
    # the same file by another name: a symlink, a hard link, a relative path with '..'
    link = nifti_scan.with_name("link.nii.gz")
    link.symlink_to(nifti_scan)
    hard = nifti_scan.with_name("hard.nii.gz")
    os.link(nifti_scan, hard)
    detour = nifti_scan.parent / ".." / nifti_scan.parent.name / nifti_scan.name
    for alias in (link, hard, detour):
        assert main([command, str(alias), str(nifti_scan), *COMMANDS[command], "--force"]) == 1
        _refused(capsys, "is the input")
    assert checksums(nifti_scan) == before


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_output_in_or_around_an_input_series_is_refused(phi_series: Path, capsys, command: str) -> None:
    before = checksums(phi_series)
    for out, how in ((phi_series, "is the input"), (phi_series / "sub", "lies inside"),
                     (phi_series / "IM00001.dcm.nii.gz", "lies inside")):
        assert main([command, str(phi_series), f"{out}/" if out == phi_series else str(out),
                     *COMMANDS[command], "--force"]) == 1
        _refused(capsys, how)
    # a file of the series given as input, its folder as output (--force would replace the folder)
    one = sorted(phi_series.iterdir())[0]
    assert main([command, str(one), str(phi_series), *COMMANDS[command], "--force"]) == 1
    _refused(capsys, "is a folder holding")
    assert checksums(phi_series) == before


def test_output_onto_the_like_scan_is_refused(nifti_scan: Path, phi_series: Path, capsys) -> None:
    before = checksums(phi_series)
    assert main(["convert", str(nifti_scan), str(phi_series), "--like", str(phi_series), "--force",
                 "--force-like"]) == 1
    _refused(capsys, "is the input")
    assert checksums(phi_series) == before


def test_path_with_spaces_and_unicode_works(nifti_scan: Path, tmp_path: Path) -> None:
    out = tmp_path / "résultats d'essai" / "ümlaut scan.nii.gz"
    assert main(["upscale", str(nifti_scan), str(out), *UPSCALE]) == 0
    assert read_volume(out).shape == (64, 56, 6)


# ------------------------------------------------------------------------------------------- stale temporaries
_KILLED_WRITER = """
import os, sys
from pathlib import Path
from mrisr.io.atomic import atomic_path
with atomic_path(Path(sys.argv[1])) as tmp:
    if sys.argv[2] == "folder":
        tmp.mkdir()
        (tmp / "IM00001.dcm").write_bytes(b"half")
    else:
        tmp.write_bytes(b"half")
    os.kill(os.getpid(), 9)
"""


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_rerun_removes_the_temporary_a_sigkill_left(tmp_path: Path, kind: str) -> None:
    target = tmp_path / ("series" if kind == "folder" else "out.nii.gz")
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target), kind], check=False)
    assert proc.returncode == -9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".{target.name}.") and not target.exists()
    # another target's temporary and an unrelated hidden file are not touched
    (tmp_path / ".other.nii.gz.1-abcd.tmp.nii.gz").write_bytes(b"x")
    (tmp_path / ".notes").write_text("mine")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".notes", ".other.nii.gz.1-abcd.tmp.nii.gz",
                                                                  target.name])


def test_temporaries_of_a_running_writer_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "out.nii.gz"
    mine = tmp_path / f".out.nii.gz.{os.getppid()}-abcd1234.tmp.nii.gz"  # a live process (our parent)
    mine.write_bytes(b"being written")
    dead = tmp_path / ".out.nii.gz.abcd1234.tmp.nii.gz"  # no pid: an older mrisr's, stale
    dead.write_bytes(b"x")
    assert remove_stale_temporaries(target) == [dead]
    assert mine.exists()


# ------------------------------------------------------------------------------------------- --like geometry
def test_like_accepts_a_volume_in_the_reference_geometry(phi_series: Path, tmp_path: Path) -> None:
    # NIfTI of the series, upscaled, written back into the patient's study: same field of view
    nifti = tmp_path / "scan.nii.gz"
    assert main(["convert", str(phi_series), str(nifti)]) == 0
    out = tmp_path / "sr_series"
    assert main(["upscale", str(nifti), str(out), *UPSCALE, "--like", str(phi_series)]) == 0
    import pydicom

    src = pydicom.dcmread(sorted(phi_series.iterdir())[0])
    got = pydicom.dcmread(sorted(out.iterdir())[0])
    assert got.StudyInstanceUID == src.StudyInstanceUID and got.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert main(["degrade", str(nifti), str(tmp_path / "lr"), "--method", "kspace", "--scale", "3",
                 "--like", str(phi_series)]) == 0


def test_like_refuses_a_volume_without_matching_geometry(phi_series: Path, tmp_path: Path, capsys) -> None:
    vol = read_volume(phi_series)
    npy = tmp_path / "plain.npy"
    np.save(npy, vol.data)  # no geometry: 1 mm identity grid at the origin
    shifted = tmp_path / "shifted.nii.gz"
    affine = vol.affine.copy()
    affine[:3, 3] += [0.0, 40.0, 0.0]
    write_volume(vol.with_data(vol.data, affine), shifted)
    rotated = tmp_path / "rotated.nii.gz"
    turn = np.eye(4)
    turn[:2, :2] = [[0.0, -1.0], [1.0, 0.0]]
    write_volume(vol.with_data(vol.data, turn @ vol.affine), rotated)
    before = checksums(phi_series)
    for source, why in ((npy, "does not lie where"), (shifted, "field of view"), (rotated, "orientation")):
        out = tmp_path / f"out_{source.name.split('.')[0]}"
        assert main(["convert", str(source), str(out), "--like", str(phi_series)]) == 1
        _refused(capsys, "--force-like", why)
        assert not out.exists()
    # --force-like: the user vouches for the geometry
    assert main(["convert", str(npy), str(tmp_path / "forced"), "--like", str(phi_series), "--force-like"]) == 0
    assert checksums(phi_series) == before
