"""The metric table: one MetricSpec per metric, and every consumer iterates over it.

A throwaway metric (mean absolute error) registered by a fixture shows up in the volume scores, the
evaluation table, per_case.csv, summary.json, the HTML report, training validation, checkpoint selection and
the check of ``validation.metric`` without any other change: adding a metric touches metrics/registry.py only.
"""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import torch

from mrisr.cli import main
from mrisr.data.phantoms import head_phantom
from mrisr.errors import ConfigError
from mrisr.io import Volume, write_volume
from mrisr.metrics.image import _masked_mean
from mrisr.metrics.registry import METRICS, MetricOptions, MetricSpec, is_better, metric, validation_metrics
from mrisr.metrics.volume import score_arrays


def _mae(ref: torch.Tensor, test: torch.Tensor, data_range: float | torch.Tensor, mask: torch.Tensor | None,
         options: MetricOptions) -> torch.Tensor:
    return _masked_mean((ref - test).abs(), mask)


@pytest.fixture
def mae(monkeypatch):
    spec = MetricSpec("mae", "MAE", "a.u.", 3, False, "mean absolute error over all voxels", per_sample=_mae)
    monkeypatch.setitem(METRICS, "mae", spec)
    return spec


@pytest.fixture
def case_file(tmp_path):
    path = tmp_path / "hr" / "case0.nii.gz"
    write_volume(Volume(head_phantom((24, 20, 8), seed=0) * 500.0, np.diag([1.0, 1.0, 3.0, 1.0])), path)
    return path


def test_builtin_table():
    assert list(METRICS) == ["psnr", "ssim", "ssim3d", "nrmse"]
    assert [s.name for s in validation_metrics()] == ["psnr", "ssim", "nrmse"]  # 3D SSIM is volume-only
    assert [(s.title, s.digits, s.higher_is_better) for s in METRICS.values()] == [
        ("PSNR (dB)", 2, True), ("SSIM", 4, True), ("SSIM-3D", 4, True), ("NRMSE", 4, False)]
    assert METRICS["psnr"].short(31.234) == "PSNR 31.23 dB" and METRICS["psnr"].short(float("inf")) == "PSNR inf"
    assert METRICS["ssim"].short(0.91234) == "SSIM 0.9123"
    with pytest.raises(KeyError, match="unknown metric 'psnrr'; known: psnr, ssim, ssim3d, nrmse"):
        metric("psnrr")


def test_direction_and_nan():
    assert is_better("psnr", 30.0, 29.0) and not is_better("psnr", 29.0, 30.0)
    assert is_better("nrmse", 0.1, 0.2) and not is_better("nrmse", 0.2, 0.1)
    assert is_better("ssim", 0.5, None) and not is_better("ssim", float("nan"), None)


def test_spec_needs_a_way_to_score():
    with pytest.raises(ValueError, match="needs a per_sample or a volume function"):
        MetricSpec("x", "X", "", 2, True, "nothing")
    with pytest.raises(ValueError, match="headline metric 'x' needs a per_sample"):
        MetricSpec("x", "X", "", 2, True, "volume only", volume=lambda pair: 1.0, headline=True)


def test_volume_score_of_a_per_sample_metric_is_the_frame_mean(mae):
    rng = np.random.default_rng(0)
    ref = rng.random((12, 10, 8, 3)) * 100.0
    test = ref + rng.normal(0, 5.0, ref.shape)
    got = score_arrays(ref, test)
    assert got["mae"] == pytest.approx(np.abs(ref - test).mean(), rel=1e-12)
    mask = ref[..., 0] > 50
    masked = score_arrays(ref, test, mask)
    assert masked["mae"] == pytest.approx(np.abs(ref - test)[mask].mean(), rel=1e-12)


def test_new_metric_reaches_tables_files_and_report(mae, case_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["evaluate", str(case_file), "--scale", "2", "--methods", "nearest,bicubic", "--out", str(out),
                 "--report", "--quiet"]) == 0
    table = capsys.readouterr().out
    head = next(ln for ln in table.splitlines() if ln.startswith("| degradation"))
    assert head.rstrip(" |").endswith("| NRMSE | MAE (a.u.)")
    rows = list(csv.DictReader((out / "per_case.csv").open()))
    assert list(rows[0])[5:10] == ["psnr", "ssim", "ssim3d", "nrmse", "mae"]  # after case keys and region
    assert float(rows[1]["mae"]) < float(rows[0]["mae"])  # bicubic closer than nearest
    summary = json.loads((out / "summary.json").read_text())["results"]
    assert [e["mae"]["mean"] for e in summary] == pytest.approx([float(r["mae"]) for r in rows])
    bicubic_row = next(ln for ln in table.splitlines() if "| bicubic |" in ln)
    assert bicubic_row.rstrip(" |").endswith(f"{summary[1]['mae']['mean']:.3f}")  # 3 digits, as declared
    html = (out / "report.html").read_text()
    assert "<th>MAE (a.u.)</th>" in html and "MAE mean absolute error over all voxels" in html
    best = re.findall(r"<td class='num best' data-metric='mae'>([^<]*)", html)
    assert best == [f"{min(e['mae']['mean'] for e in summary):.3f}"]  # lower is better, as declared
    assert len(re.findall(r"data-metric='mae'>", html)) == 2 + 2 * 2  # summary + all-cases + the case's table


def test_new_metric_reaches_validation_and_checkpoint_choice(mae):
    from mrisr.train.config import config_from_dict
    from mrisr.train.validate import score

    hr = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    sr = hr + 0.1
    scores = score(sr, hr, torch.ones(2), ssim_gaussian=False)
    assert list(scores) == ["psnr", "ssim", "nrmse", "mae"]
    torch.testing.assert_close(scores["mae"], torch.full((2,), 0.1), atol=1e-6, rtol=0)
    assert is_better("mae", 0.1, 0.2)
    base = {"data": {"root": "prepared"}, "model": {"generator": {"name": "srresnet", "args": {"scale": 2}}},
            "phases": [{"name": "sup", "steps": 10, "losses": [{"name": "l1"}]}]}
    assert config_from_dict(base, ["validation.metric=mae"]).validation.metric == "mae"
    with pytest.raises(ConfigError, match=r"validation\.metric: unknown metric 'ssim3d'; known: psnr, ssim, nrmse, mae"):
        config_from_dict(base, ["validation.metric=ssim3d"])


def test_headline_metric_reaches_figure_titles(monkeypatch, tmp_path):
    from dataclasses import replace

    from mrisr.evaluate import CaseVolumes
    from mrisr.report.figures import case_figure

    monkeypatch.setitem(METRICS, "mae", MetricSpec("mae", "MAE", "", 3, False, "mean absolute error",
                                                   per_sample=_mae, headline=True))
    monkeypatch.setitem(METRICS, "ssim", replace(METRICS["ssim"], headline=False))
    ref = Volume(head_phantom((32, 32, 8), seed=1) * 100.0, np.diag([1.0, 1.0, 2.0, 1.0]))
    test = ref.with_data(ref.data + 2.0)
    info = case_figure(CaseVolumes("c", "", "", ref, None, {"test": test}, None, []), tmp_path / "f.png", zoom=False)
    panel = next(p for p in info.panels if p.kind == "method")
    assert set(panel.scores) == {"psnr", "mae"} and panel.scores["mae"] == pytest.approx(2.0)
    assert re.search(r"PSNR \d+\.\d\d dB  MAE 2\.000$", panel.title)
