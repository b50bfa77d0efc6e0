"""Results: summary per (degradation, scale, method), the printed table and the two result files."""

import csv
import json

import pytest

from mrisr.errors import OutputExistsError
from mrisr.evaluate import columns, format_table, summarise_rows, write_results


def _row(case, method, psnr, ssim3d=None, deg="kspace", scale=2):
    return {"case": case, "degradation": deg, "scale": scale, "method": method, "psnr": psnr, "ssim": 0.9,
            "ssim3d": ssim3d, "nrmse": 0.1, "data_range": 1.0, "voxels": 10, "mask": "none", "seconds": 0.1}


def test_columns_follow_the_metric_table():
    assert columns() == ("case", "degradation", "scale", "method", "region", "psnr", "ssim", "ssim3d", "nrmse",
                         "data_range", "voxels", "negative_voxels", "mask", "seconds", "note")


def test_summary_groups_in_first_seen_order():
    rows = [_row("a", "bicubic", 30.0), _row("a", "model", 32.0), _row("b", "bicubic", 28.0),
            _row("b", "model", 31.0)]
    summary = summarise_rows(rows)
    assert [(e["method"], e["n"]) for e in summary] == [("bicubic", 2), ("model", 2)]
    assert summary[0]["psnr"]["mean"] == pytest.approx(29.0)
    assert summary[0]["ssim3d"] is None  # no values: no summary


def test_table_shows_3d_ssim_only_when_measured():
    flat = format_table(summarise_rows([_row("a", "bicubic", 30.0)]))
    assert flat.splitlines()[0] == "| degradation | scale | method | n | PSNR (dB) | SSIM | NRMSE |"
    assert flat.splitlines()[2] == "| kspace | x2 | bicubic | 1 | 30.00 | 0.9000 | 0.1000 |"
    vol = format_table(summarise_rows([_row("a", "bicubic", 30.0, 0.8), _row("b", "bicubic", 32.0, 0.85)]))
    assert vol.splitlines()[0] == "| degradation | scale | method | n | PSNR (dB) | SSIM | SSIM-3D | NRMSE |"
    assert "| 31.00 ± 1.41 | 0.9000 ± 0.0000 | 0.8250 ± 0.0354 |" in vol.splitlines()[2]
    pairs = format_table(summarise_rows([_row("a", "test", 30.0, deg="", scale="")]))
    assert pairs.splitlines()[2].startswith("| - | - | test | 1 |")


def test_files_json_safe_and_refusing_to_overwrite(tmp_path):
    rows = [_row("a", "nearest", float("inf")), _row("b", "nearest", 30.0)]
    summary = summarise_rows(rows)
    csv_path, json_path = write_results(tmp_path, rows, summary, {"mode": "protocol"})
    got = list(csv.DictReader(csv_path.open()))
    assert list(got[0]) == list(columns()) and got[0]["ssim3d"] == "" and got[0]["psnr"] == "inf"
    data = json.loads(json_path.read_text())
    assert data["settings"] == {"mode": "protocol"}
    assert data["results"][0]["psnr"]["mean"] is None  # inf mean -> null, strict JSON
    with pytest.raises(OutputExistsError):
        write_results(tmp_path, rows, summary, {})
    write_results(tmp_path, rows[1:], summarise_rows(rows[1:]), {}, force=True)
    assert len(list(csv.DictReader(csv_path.open()))) == 1
