"""read_case_scores: per_case.csv back to case -> method -> metric, one mask region."""

from __future__ import annotations

import csv

from mrisr.evaluate.results import columns, read_case_scores


def test_read_case_scores_keeps_one_region_and_the_filled_metrics(tmp_path):
    rows = [{"case": "a", "method": "zerofill", "region": "whole", "psnr": "30.5", "ssim": "0.9"},
            {"case": "a", "method": "zerofill", "region": "edge", "psnr": "20.0", "ssim": "0.5"},
            {"case": "a", "method": "m", "region": "whole", "psnr": "31.25", "ssim": "0.95", "ssim3d": ""},
            {"case": "b", "method": "m", "region": "", "psnr": "29", "ssim": "0.8"}]  # older files: no region
    with open(tmp_path / "per_case.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, columns(), restval="")
        w.writeheader()
        w.writerows(rows)
    got = read_case_scores(tmp_path)
    assert got == {"a": {"zerofill": {"psnr": 30.5, "ssim": 0.9}, "m": {"psnr": 31.25, "ssim": 0.95}},
                   "b": {"m": {"psnr": 29.0, "ssim": 0.8}}}
    assert read_case_scores(tmp_path, "edge") == {"a": {"zerofill": {"psnr": 20.0, "ssim": 0.5}}}
