"""Acceptance tests of `mrisr prepare` on the synthetic cohorts."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mrisr.cli import main
from mrisr.data.manifest import load_manifest
from mrisr.data.prepare import PrepareOptions, prepare_dataset
from mrisr.errors import ConfigError, MrisrError

CARDIAC = {"roi_from_masks": True, "roi_margin": 3, "split": "train=0.5,val=0.25,test=0.25"}


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "slices.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def cardiac(example_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prep") / "cardiac"
    prepare_dataset(example_root / "cardiac", out, CARDIAC)
    return out


@pytest.fixture(scope="module")
def pediatric(example_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prep") / "pediatric"
    prepare_dataset(example_root / "pediatric", out, split="train=0.5,val=0.25,test=0.25")
    return out


@pytest.mark.parametrize("name", ["cardiac", "pediatric"])
def test_no_patient_in_two_splits(name: str, request: pytest.FixtureRequest) -> None:
    out = request.getfixturevalue(name)
    manifest = load_manifest(out)
    splits_of = defaultdict(set)
    for v in manifest.volumes:
        splits_of[v.record.patient].add(v.split)
    for r in rows(out):
        splits_of[r["patient"]].add(r["split"])
    assert len(splits_of) == 4
    assert all(len(s) == 1 for s in splits_of.values()), splits_of
    assert Counter(next(iter(s)) for s in splits_of.values()) == {"train": 2, "val": 1, "test": 1}


def test_pediatric_patients_are_dicom_patient_ids(example_root: Path, tmp_path: Path) -> None:
    # only with show_phi: by default they are pseudonyms (tests/safety/test_privacy.py)
    pediatric = tmp_path / "ped"
    prepare_dataset(example_root / "pediatric", pediatric, show_phi=True)
    assert {v.record.patient for v in load_manifest(pediatric).volumes} == {"PED001", "PED002", "PED003", "PED004"}


@pytest.mark.parametrize("name", ["cardiac", "pediatric"])
def test_manifest_counts_match_files(name: str, request: pytest.FixtureRequest) -> None:
    out = request.getfixturevalue(name)
    manifest = load_manifest(out)
    table = rows(out)
    per_volume = Counter(r["volume_id"] for r in table)
    stored = sorted(p.name for p in (out / "volumes").glob("*.npy") if not p.name.endswith("_mask.npy"))
    assert stored == sorted(Path(v.record.file).name for v in manifest.volumes)
    for v in manifest.volumes:
        arr = np.load(out / v.record.file, mmap_mode="r")
        assert list(arr.shape) == v.record.shape
        assert arr.dtype == np.float32 and 0.0 <= float(arr.min()) and float(arr.max()) <= 1.0
        assert per_volume[v.record.volume_id] == len(v.slices) == arr.shape[0] * arr.shape[1]  # nothing skipped
        assert all(int(r["height"]) == arr.shape[2] and int(r["width"]) == arr.shape[3]
                   for r in table if r["volume_id"] == v.record.volume_id)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["volumes"] == len(manifest.volumes) == 4
    assert sum(s["slices"] for s in summary["splits"].values()) == len(table)
    assert (out / "summary.txt").read_text().startswith("prepared 4 volumes of 4 patients")


def test_manifest_records_normalisation_spacing_and_source(cardiac: Path, example_root: Path) -> None:
    manifest = load_manifest(cardiac)
    v = next(v for v in manifest.volumes if v.record.patient == "patient002")
    assert v.record.source == "patient002/patient002_4d.nii.gz"
    assert v.record.spacing == [8.0, 1.5, 1.5]
    img = nib.load(example_root / "cardiac" / v.record.source)
    data = np.asarray(img.dataobj, dtype=np.float32)
    lo, hi = np.percentile(data, [0.5, 99.5])
    assert v.record.normalisation["low"] == pytest.approx(lo, rel=1e-5)
    assert v.record.normalisation["high"] == pytest.approx(hi, rel=1e-5)
    r = next(r for r in rows(cardiac) if r["volume_id"] == v.record.volume_id)
    assert float(r["spacing_slice_mm"]) == 8.0 and float(r["norm_high"]) == pytest.approx(hi, rel=1e-5)


def test_roi_crop_is_union_bbox_of_masks_plus_margin(cardiac: Path, example_root: Path) -> None:
    margin = CARDIAC["roi_margin"]
    for v in load_manifest(cardiac).volumes:
        src = example_root / "cardiac" / v.record.source
        mask = np.asarray(nib.load(str(src).replace("_4d.nii.gz", "_4d_gt.nii.gz")).dataobj) > 0  # (X, Y, Z, T)
        xs = np.nonzero(mask.any(axis=(1, 2, 3)))[0]
        ys = np.nonzero(mask.any(axis=(0, 2, 3)))[0]
        x0, x1 = max(xs[0] - margin, 0), min(xs[-1] + 1 + margin, mask.shape[0])
        y0, y1 = max(ys[0] - margin, 0), min(ys[-1] + 1 + margin, mask.shape[1])
        assert v.record.roi is not None and v.record.roi["bbox"] == [x0, x1, y0, y1]
        arr = np.load(cardiac / v.record.file)
        assert arr.shape == (5, 4, x1 - x0, y1 - y0)
        data = np.asarray(nib.load(src).dataobj, dtype=np.float32)
        n = v.record.normalisation
        expected = np.clip((data - n["low"]) / (n["high"] - n["low"]), 0, 1)[x0:x1, y0:y1]  # (x, y, z, t)
        np.testing.assert_allclose(arr, expected.transpose(3, 2, 0, 1), atol=1e-6)
        stored_mask = np.load(cardiac / v.record.mask_file)
        np.testing.assert_array_equal(stored_mask > 0, mask[x0:x1, y0:y1].transpose(3, 2, 0, 1))


def test_4d_yields_every_frame(cardiac: Path) -> None:
    table = rows(cardiac)
    for v in load_manifest(cardiac).volumes:
        pairs = {(int(r["frame"]), int(r["slice"])) for r in table if r["volume_id"] == v.record.volume_id}
        assert pairs == {(t, s) for t in range(5) for s in range(4)}
    # the frames differ: the heart beats
    arr = np.load(cardiac / load_manifest(cardiac).volumes[0].record.file)
    assert np.abs(arr[0] - arr[2]).max() > 0.1


def test_resume_skips_finished_volumes(example_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "prep"
    first = prepare_dataset(example_root / "cardiac", out, CARDIAC)
    assert (first["new"], first["reused"]) == (4, 0)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "volumes").iterdir()}
    again = prepare_dataset(example_root / "cardiac", out, CARDIAC)
    assert (again["new"], again["reused"]) == (0, 4)
    assert {p: p.stat().st_mtime_ns for p in (out / "volumes").iterdir()} == stamps
    # an interrupted run: one volume's record missing -> only that one is redone
    (out / "records" / "patient003__patient003_4d.json").unlink()
    third = prepare_dataset(example_root / "cardiac", out, CARDIAC)
    assert (third["new"], third["reused"]) == (1, 3)
    # a changed source file is redone too
    src = example_root / "cardiac" / "patient001" / "patient001_4d.nii.gz"
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    assert prepare_dataset(example_root / "cardiac", out, CARDIAC)["new"] == 1
    # split-only options are re-applied without redoing arrays
    resplit = prepare_dataset(example_root / "cardiac", out, {**CARDIAC, "seed": 7})
    assert (resplit["new"], resplit["reused"]) == (0, 4)


def test_other_array_options_into_same_out_is_an_error(cardiac: Path, example_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "prep"
    prepare_dataset(example_root / "cardiac", out, CARDIAC)
    with pytest.raises(MrisrError, match=r"roi_margin: 3 -> 5"):
        prepare_dataset(example_root / "cardiac", out, {**CARDIAC, "roi_margin": 5})
    summary = prepare_dataset(example_root / "cardiac", out, {**CARDIAC, "roi_margin": 5}, force=True)
    assert summary["new"] == 4


def test_bad_inputs_are_reported_and_skipped(example_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", str(example_root / "pediatric"), str(tmp_path / "ped"), "--no-progress",
                 "--split", "train=0.5,val=0.25,test=0.25"]) == 0
    text = capsys.readouterr().out
    assert "prepared 4 volumes of 4 patients" in text
    assert "skipped 2 inputs:" in text
    assert "CT001/head_ct/: modality CT, not MR" in text
    assert "incoming/: unreadable:" in text and "truncated" in text
    summary = json.loads((tmp_path / "ped" / "summary.json").read_text())
    assert {s["source"].split("/")[0] for s in summary["skipped"]} == {"CT001", "incoming"}
    card = prepare_dataset(example_root / "cardiac", tmp_path / "card")
    assert [s["source"] for s in card["skipped"]] == ["patient_bad/patient_bad_4d.nii.gz"]
    assert card["volumes"] == 4


def test_resize_crop_skip_empty_and_3d_patches(example_root: Path, tmp_path: Path) -> None:
    opts = PrepareOptions(resize=(48, 48), crop=(40, 56), skip_empty=0.05, patch3d=(2, 16, 16), patch3d_stride=(2, 8, 8))
    prepare_dataset(example_root / "pediatric", tmp_path / "p", opts)
    manifest = load_manifest(tmp_path / "p")
    for v in manifest.volumes:
        arr = np.load(tmp_path / "p" / v.record.file)
        assert arr.shape == (1, 4, 40, 56)
        assert v.record.spacing == [4.0, pytest.approx(0.5 * 32 / 48), pytest.approx(0.5 * 32 / 48)]
        assert v.record.crop_offset == [4, -4]
        assert np.all(arr[..., :4] == 0) and np.all(arr[..., -4:] == 0)  # zero padding
        fg = (arr > 0.05).mean(axis=(2, 3))
        assert {tuple(s) for s in v.slices} == {(t, s) for t, s in zip(*np.nonzero(fg >= 0.05), strict=True)}
        assert v.record.empty_slices_skipped == int((fg < 0.05).sum())
        for _t, z, y, x in v.patches3d:
            assert z + 2 <= 4 and y + 16 <= 40 and x + 16 <= 56
    assert sum(len(v.slices) for v in manifest.volumes) < 16  # the phantom's end slices are (near) empty
    assert (tmp_path / "p" / "patches3d.csv").read_text().count("\n") == 1 + sum(len(v.patches3d) for v in manifest.volumes)


def test_patch3d_larger_than_the_volumes_is_reported(example_root: Path, tmp_path: Path) -> None:
    summary = prepare_dataset(example_root / "pediatric", tmp_path / "p", patch3d=(8, 16, 16), split="train=1.0")
    assert len(summary["no_patches3d"]) == summary["volumes"] == 4  # 4 slices < 8: no patch anywhere
    assert "warning: 4 volumes have no 3D patch" in (tmp_path / "p" / "summary.txt").read_text()


def test_one_shared_patient_id_leaves_splits_empty_with_a_warning(tmp_path: Path) -> None:
    # anonymised exports often give every scan the same PatientID: one "patient", val/test empty
    from mrisr.data.phantoms import head_phantom
    from mrisr.io import Volume, write_volume

    for i in range(3):
        write_volume(Volume(head_phantom((16, 16, 2), seed=i) * 1000, np.eye(4), {"patient_id": "ANONYMOUS"}),
                     tmp_path / "src" / f"p{i}" / "t1")
    summary = prepare_dataset(tmp_path / "src", tmp_path / "o")
    assert summary["patients"] == 1 and summary["empty_splits"] == ["val", "test"]
    assert "warning: split(s) val, test received no patient: 1 patients for 3 volumes (scans share one PatientID" \
        in (tmp_path / "o" / "summary.txt").read_text()
    assert prepare_dataset(tmp_path / "src", tmp_path / "f", group_by="folder")["empty_splits"] == []


def test_auto_grouping_puts_a_nifti_copy_with_its_dicom_patient(tmp_path: Path) -> None:
    # PAT01/ holds a DICOM series (PatientID 12345) and a NIfTI of it: one patient, never two splits
    from mrisr.data.discover import discover
    from mrisr.data.phantoms import head_phantom
    from mrisr.io import Volume, write_volume

    vol = Volume(head_phantom((16, 16, 2), seed=0) * 1000, np.eye(4), {"patient_id": "12345", "modality": "MR"})
    write_volume(vol, tmp_path / "PAT01" / "dicom")
    write_volume(vol, tmp_path / "PAT01" / "t1.nii.gz")
    for pid in ("888", "999"):  # a dump folder of several patients is not merged
        write_volume(vol.with_data(vol.data, patient_id=pid), tmp_path / "dump" / pid)
    write_volume(vol, tmp_path / "dump" / "x.nii.gz")
    got = {s.rel: s.patient for s in discover(tmp_path, group_by="auto").scans}
    assert got == {"PAT01/dicom/": "12345", "PAT01/t1.nii.gz": "12345", "dump/888/": "888", "dump/999/": "999",
                   "dump/x.nii.gz": "dump"}


def test_nothing_to_prepare_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "png" / "p1").mkdir(parents=True)
    (tmp_path / "png" / "p1" / "slice.png").write_bytes(b"")
    with pytest.raises(MrisrError, match=r"no scans .* found under .*1 PNG/JPEG/TIFF/NPY files were ignored"):
        prepare_dataset(tmp_path / "png", tmp_path / "o1")
    (tmp_path / "bad" / "p1").mkdir(parents=True)
    (tmp_path / "bad" / "p1" / "x.dcm").write_bytes(b"garbage")
    with pytest.raises(MrisrError, match=r"no volume prepared .* all 1 inputs skipped"):
        prepare_dataset(tmp_path / "bad", tmp_path / "o2")


def test_image_count_split_trims_to_exact_size(example_root: Path, tmp_path: Path) -> None:
    summary = prepare_dataset(example_root / "pediatric", tmp_path / "p", split="test=6,val=2,train=rest", split_unit="images")
    assert summary["splits"]["test"]["slices"] == 6 and summary["splits"]["test"]["patients"] == 2
    assert summary["splits"]["val"]["slices"] == 2 and summary["unused_slices"] == 4


def test_patient_regex_and_unknown_options(example_root: Path, tmp_path: Path) -> None:
    summary = prepare_dataset(example_root / "cardiac", tmp_path / "c", patient_regex=r"patient00(?P<patient>[12])",
                              split="train=1.0")
    assert summary["patients"] == 2 and summary["volumes"] == 2
    with pytest.raises(ConfigError, match="unknown option"):
        prepare_dataset(example_root / "cardiac", tmp_path / "d", resise=64)
    with pytest.raises(ConfigError, match="resize"):
        PrepareOptions(resize=(0, 3))
    with pytest.raises(ConfigError, match="seed: a non-negative integer, got -1"):  # was numpy's ValueError
        PrepareOptions(seed=-1)


def test_make_example_data_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["make-example-data", str(tmp_path), "--patients", "2", "--pediatric-shape", "16x16x2",
                 "--cardiac-shape", "16x16x2x3", "--no-bad-inputs"]) == 0
    assert "pediatric:" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "cardiac").iterdir()) == [".mrisr-example", "patient001", "patient002"]
    assert main(["make-example-data", str(tmp_path)]) == 1  # exists, no --force
    small = ["--patients", "1", "--pediatric-shape", "16x16x1", "--cardiac-shape", "16x16x1x1", "--no-bad-inputs"]
    assert main(["make-example-data", str(tmp_path), *small, "--force"]) == 0  # its own folders are replaced
    # --force never deletes a folder it did not write (real patients in OUT/pediatric)
    real = tmp_path / "real"
    (real / "pediatric" / "PAT1").mkdir(parents=True)
    (real / "pediatric" / "PAT1" / "scan.dcm").write_bytes(b"x")
    capsys.readouterr()
    assert main(["make-example-data", str(real), *small, "--force"]) == 1
    assert "was not written by make-example-data" in capsys.readouterr().err
    assert (real / "pediatric" / "PAT1" / "scan.dcm").is_file()
    for bad, message in ((["--patients", "0"], "at least 1"), (["--pediatric-shape", "8x8"], "pediatric_shape"),
                         (["--cardiac-shape", "0x8x1x1"], "cardiac_shape"), (["--seed", "-1"], "non-negative"),
                         (["--pediatric-shape", "3000x3000x200"], "voxels per scan")):
        assert main(["make-example-data", str(tmp_path / "new"), *bad]) == 1
        assert message in capsys.readouterr().err
