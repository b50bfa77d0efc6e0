"""Evaluation that fits the pipeline it scores: mask regions, grids that overlap, mixed folders, saved outputs."""

import csv
import json
import shutil

import numpy as np
import pytest

from mrisr.cli import main
from mrisr.data.phantoms import head_phantom
from mrisr.evaluate import evaluate_pairs, evaluate_protocol
from mrisr.evaluate.cases import EDGE_WIDTH, find_cases, grid_overlap, region_masks
from mrisr.evaluate.outputs import output_name
from mrisr.io import Volume, read_volume, write_volume


def test_region_masks_split_the_mask_at_six_voxels_from_its_border():
    mask = np.zeros((40, 40, 30), dtype=bool)
    mask[5:35, 5:35, 2:28] = True
    r = region_masks(mask, 3)
    assert np.array_equal(r["whole"], mask)
    assert not (r["interior"] & r["edge"]).any() and np.array_equal(r["interior"] | r["edge"], mask)
    # a voxel of the cube is interior when more than 6 voxels from the nearest voxel outside
    inner = np.zeros_like(mask)
    inner[5 + EDGE_WIDTH:35 - EDGE_WIDTH, 5 + EDGE_WIDTH:35 - EDGE_WIDTH, 2 + EDGE_WIDTH:28 - EDGE_WIDTH] = True
    assert np.array_equal(r["interior"], inner)
    # the field of view's border is not the object's edge: a mask cut by it keeps its cut face in the interior
    slab = np.zeros((40, 40, 8), dtype=bool)
    slab[5:35, 5:35, :] = True
    assert region_masks(slab, 3)["interior"][20, 20, 0]
    # 4D: frame by frame
    four = np.stack([mask, mask], axis=-1)
    assert np.array_equal(region_masks(four, 3)["interior"][..., 1], inner)


def test_protocol_scores_each_region_and_counts_negative_voxels(tmp_path):
    path = tmp_path / "case.nii.gz"
    write_volume(Volume(head_phantom((48, 48, 20), seed=0) * 300.0, np.eye(4)), path)
    rows = evaluate_protocol([str(path)], ["kspace"], [2], ["lanczos"], mask="auto",
                             regions=("whole", "interior", "edge"))
    assert [r["region"] for r in rows] == ["whole", "interior", "edge"]
    by = {r["region"]: r for r in rows}
    assert by["interior"]["voxels"] + by["edge"]["voxels"] == by["whole"]["voxels"]
    # Lanczos rings below zero at the head's edge; every region row reports the volume's count
    assert by["whole"]["negative_voxels"] > 0 and len({r["negative_voxels"] for r in rows}) == 1
    # without a mask there are no regions to split
    plain = evaluate_protocol([str(path)], ["kspace"], [2], ["lanczos"], regions=("whole", "interior", "edge"))
    assert [r["region"] for r in plain] == ["whole"] and plain[0]["psnr"] != by["whole"]["psnr"]


def test_grid_overlap_of_shifted_grids():
    ref = Volume(np.zeros((33, 41, 25)), np.diag([2.0, 2.0, 2.0, 1.0]))
    shifted = np.diag([2.0, 2.0, 2.0, 1.0])
    shifted[:3, 3] = [2.0, 0.0, 0.0]  # one voxel along i
    test = Volume(np.zeros((32, 40, 25)), shifted)
    in_ref, in_test = grid_overlap(ref, test)
    assert in_ref == (slice(1, 33), slice(0, 40), slice(0, 25))
    assert in_test == (slice(0, 32), slice(0, 40), slice(0, 25))
    half = shifted.copy()
    half[0, 3] = 1.0  # half a voxel: no voxel-for-voxel overlap
    assert grid_overlap(ref, Volume(np.zeros((32, 40, 25)), half)) is None
    finer = np.diag([1.0, 1.0, 2.0, 1.0])
    assert grid_overlap(ref, Volume(np.zeros((32, 40, 25)), finer)) is None


def test_pairs_of_a_cropped_output_score_the_overlap(tmp_path, capsys):
    # degrade crops 33 x 41 x 25 to 32 x 40 x 25; the upscaled output is on the cropped grid
    scan = tmp_path / "scan.nii.gz"
    data = head_phantom((33, 41, 25), seed=2) * 400.0
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-30.0, -40.0, -20.0]
    write_volume(Volume(data, affine), scan)
    assert main(["degrade", str(scan), str(tmp_path / "lr.nii.gz"), "--scale", "2"]) == 0
    assert main(["upscale", str(tmp_path / "lr.nii.gz"), str(tmp_path / "sr.nii.gz"), "--method", "bicubic",
                 "--scale", "2"]) == 0
    capsys.readouterr()
    out = tmp_path / "res"
    assert main(["evaluate", "--reference", str(scan), "--test", str(tmp_path / "sr.nii.gz"), "--out", str(out),
                 "--no-report"]) == 0
    captured = capsys.readouterr()
    assert "scored the overlap of the grids: 32x40x25 voxels (reference 33x41x25, test 32x40x25)" in captured.err
    rows = list(csv.DictReader((out / "per_case.csv").open()))
    assert int(rows[0]["voxels"]) == 32 * 40 * 25 and "overlap" in rows[0]["note"]
    # the same scores as scoring the crop itself
    ref = read_volume(scan)
    sr = read_volume(tmp_path / "sr.nii.gz")
    crop = tmp_path / "crop.nii.gz"
    in_ref, _ = grid_overlap(ref, sr)
    write_volume(Volume(ref.data[in_ref], sr.affine), crop)
    direct = evaluate_pairs(crop, tmp_path / "sr.nii.gz")
    assert float(rows[0]["psnr"]) == pytest.approx(direct[0]["psnr"], abs=1e-6)
    assert not (out / "report.html").exists()  # --no-report


def test_a_folder_of_nifti_and_dicom_scores_every_readable_scan(tmp_path, capsys):
    folder = tmp_path / "mixed"
    write_volume(Volume(head_phantom((32, 32, 8), seed=0) * 300.0, np.eye(4)), folder / "brain.nii.gz")
    series = tmp_path / "series"
    write_volume(Volume(head_phantom((32, 32, 3), seed=1) * 300.0, np.eye(4)), series)
    shutil.copy(sorted(series.iterdir())[1], folder / "slice.dcm")
    (folder / "broken.dcm").write_bytes(b"not a dicom file at all")
    (folder / "notes.txt").write_text("scanned on Tuesday\n")
    found = find_cases(folder)
    assert sorted(found.cases) == ["brain", "broken", "slice"]
    assert [p.rsplit("/", 1)[-1] for p, _ in found.skipped] == ["notes.txt"]
    out = tmp_path / "res"
    assert main(["evaluate", str(folder), "--scale", "2", "--methods", "linear", "--out", str(out),
                 "--quiet"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader((out / "per_case.csv").open()))
    assert sorted(r["case"] for r in rows) == ["brain", "slice"]
    assert "skipped " in captured.err and "broken.dcm: unreadable" in captured.err
    assert "notes.txt: not a scan file" in captured.err
    skipped = json.loads((out / "summary.json").read_text())["settings"]["skipped"]
    assert sorted(p.rsplit("/", 1)[-1] for p, _ in skipped) == ["broken.dcm", "notes.txt"]
    text = (out / "report.html").read_text()  # written by default with --out, and its path printed
    assert f"report: {(out / 'report.html').resolve()}" in captured.out
    assert "<h3>Skipped inputs</h3>" in text and "broken.dcm" in text and "notes.txt" in text


def test_only_unreadable_scans_is_an_error(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.nii.gz").write_bytes(b"junk")
    assert main(["evaluate", str(folder), "--methods", "linear", "--quiet"]) == 1
    assert "no readable scan to score (1 input(s) skipped)" in capsys.readouterr().err


def test_save_outputs_keeps_every_method(tmp_path, capsys):
    path = tmp_path / "hr" / "case0.nii.gz"
    write_volume(Volume(head_phantom((24, 20, 6), seed=0) * 300.0, np.eye(4)), path)
    out = tmp_path / "res"
    assert main(["evaluate", str(path), "--scale", "2", "--methods", "nearest,bicubic", "--out", str(out),
                 "--save-outputs", "--no-report", "--quiet"]) == 0
    saved = sorted(p.name for p in (out / "outputs").iterdir())
    assert saved == ["case0_kspace_x2_bicubic.nii.gz", "case0_kspace_x2_lr.nii.gz", "case0_kspace_x2_nearest.nii.gz"]
    assert read_volume(out / "outputs" / saved[0]).shape == (24, 20, 6)
    assert read_volume(out / "outputs" / saved[1]).shape == (12, 10, 6)
    assert "wrote 3 volume(s)" in capsys.readouterr().out
    assert output_name("c", "kspace;noise:snr=20", 2, "runs/a/best.safetensors") == "c_kspace_noise_snr=20_x2_best.nii.gz"
    with pytest.raises(SystemExit) as exc:  # needs --out
        main(["evaluate", str(path), "--save-outputs", "--quiet"])
    assert exc.value.code == 2
