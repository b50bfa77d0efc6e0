"""Folder batches: which scans a folder holds, their output names, the share of each rank, the summary."""

from __future__ import annotations

import numpy as np
import pytest

from mrisr.errors import ConfigError, InputError
from mrisr.infer.batch import BatchResult, Ranks, is_folder_batch, list_scans, shard, summary_line
from mrisr.io import Volume, write_volume
from tests.conftest import oblique_affine


def _scan(shape=(8, 6, 3), seed=0, **meta):
    return Volume(np.rint(np.random.default_rng(seed).random(shape) * 500), oblique_affine(), dict(meta))


@pytest.fixture
def tree(tmp_path):
    """in/a.nii.gz, in/sub/b.nii, in/sub/series/ (DICOM), in/two/ (two DICOM series), hidden and other files."""
    root = tmp_path / "in"
    write_volume(_scan(seed=1), root / "a.nii.gz")
    write_volume(_scan(seed=2), root / "sub" / "b.nii")
    write_volume(_scan(seed=3, patient_id="P1"), root / "sub" / "series")
    write_volume(_scan(seed=4), root / "two" / "s1")
    write_volume(_scan(seed=5), root / "two" / "s2")
    for p in (root / "two" / "s2").iterdir():  # both series in one folder
        p.rename(root / "two" / f"x_{p.name}")
    (root / "two" / "s2").rmdir()
    for p in (root / "two" / "s1").iterdir():
        p.rename(root / "two" / p.name)
    (root / "two" / "s1").rmdir()
    (root / "notes.txt").write_text("not a scan")
    write_volume(_scan(seed=6), root / ".hidden.nii.gz")
    return root


def test_outputs_mirror_the_input_paths(tree, tmp_path):
    scans = list_scans(tree, tmp_path / "out")
    names = [s.name for s in scans]
    assert names == sorted(names)
    by_name = {s.name: s for s in scans}
    assert by_name["a.nii.gz"].output == tmp_path / "out" / "a.nii.gz"
    assert by_name["sub/b.nii"].output == tmp_path / "out" / "sub" / "b.nii"
    assert by_name["sub/series/"].output == tmp_path / "out" / "sub" / "series"
    assert by_name["sub/series/"].series  # read by SeriesInstanceUID
    two = [s for s in scans if s.name.startswith("two/")]
    assert len(two) == 2 and {s.source for s in two} == {tree / "two"}
    assert {s.output.name for s in two} == {s.series for s in two}  # a shared folder: one folder per series
    assert len(scans) == 5  # hidden files and notes.txt left out


def test_output_formats(tree, tmp_path):
    nifti = {s.name: s.output for s in list_scans(tree, tmp_path / "o", to="nifti")}
    assert nifti["sub/series/"] == tmp_path / "o" / "sub" / "series.nii.gz"
    assert nifti["sub/b.nii"] == tmp_path / "o" / "sub" / "b.nii.gz"
    dicom = {s.name: s.output for s in list_scans(tree, tmp_path / "o", to="dicom")}
    assert dicom["a.nii.gz"] == tmp_path / "o" / "a" and dicom["sub/b.nii"] == tmp_path / "o" / "sub" / "b"
    with pytest.raises(ConfigError, match="unknown output format"):
        list_scans(tree, tmp_path / "o", to="png")


def test_two_scans_with_one_output_and_empty_folders_are_refused(tmp_path):
    write_volume(_scan(seed=1), tmp_path / "in" / "x.nii")
    write_volume(_scan(seed=2), tmp_path / "in" / "x.nii.gz")
    with pytest.raises(InputError, match=r"x.nii and x.nii.gz would both be written to .*/out/x;"):
        list_scans(tmp_path / "in", tmp_path / "out", to="dicom")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no NIfTI files or DICOM series"):
        list_scans(tmp_path / "empty", tmp_path / "out")


def test_what_counts_as_a_folder_batch(tree, tmp_path):
    assert is_folder_batch(tree)
    assert is_folder_batch(tree / "two")  # two series in one folder: one output each
    assert not is_folder_batch(tree / "two", series="1.2.3")  # --series picks one: a single scan
    assert not is_folder_batch(tree / "sub" / "series")  # one DICOM series: a single scan, as before
    assert not is_folder_batch(tree / "a.nii.gz")


def test_each_rank_takes_every_world_size_th_scan(tree, tmp_path):
    scans = list_scans(tree, tmp_path / "out")
    parts = [shard(scans, r, 2) for r in range(2)]
    assert [s.name for s in parts[0]] == [s.name for s in scans[0::2]]
    assert sorted(s.name for p in parts for s in p) == sorted(s.name for s in scans)
    assert not {s.name for s in parts[0]} & {s.name for s in parts[1]}


def test_ranks_from_the_environment(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert Ranks.from_env() == Ranks(0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert Ranks.from_env() == Ranks(3, 4, 1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="not one of the WORLD_SIZE 4"):
        Ranks.from_env()


def test_summary_line():
    result = BatchResult(["b", "a"], ["c"], [("d.nii.gz", "cannot read NIfTI d.nii.gz: bad")])
    merged = BatchResult().merged([result, BatchResult(["e"], [], [])])
    assert summary_line(merged) == "upscaled 3, skipped 1, failed 1 (d.nii.gz: cannot read NIfTI d.nii.gz: bad)"
    assert merged.done == ["a", "b", "e"]
    assert summary_line(BatchResult()) == "upscaled 0, skipped 0, failed 0"
