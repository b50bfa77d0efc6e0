"""Reports of training runs: the page ``mrisr train`` writes at the end (and ``mrisr report RUN``), and
``mrisr compare``: their numbers equal metrics.csv / summary.json, and the pages hold no URL."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from mrisr.cli import main
from mrisr.report.charts import line_chart, nice_ticks
from mrisr.report.runs import MAX_GRIDS, chosen_samples, differing_params, flatten, read_run
from tests.report.runs_helpers import tiny_run


@pytest.fixture(scope="module")
def runs(prepared: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    return [tiny_run(prepared["data/prepared/pediatric"], root / name, lr) for name, lr in
            (("lr1e-3", 1e-3), ("lr3e-4", 3e-4))]


def _log(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "metrics.csv").open()))


def _no_url(text: str) -> None:
    assert "http://" not in text and "https://" not in text and "<script src" not in text


def test_train_writes_the_run_report_and_prints_its_path(runs: list[Path], capsys: pytest.CaptureFixture[str]):
    run = runs[0]
    text = (run / "report.html").read_text()
    _no_url(text)
    log = _log(run)
    summary = json.loads((run / "summary.json").read_text())
    # the last and best validation score of every method equal metrics.csv
    table = text.split("<table class='validation'>", 1)[1].split("</table>", 1)[0]
    for method in ("model", "bicubic", "zerofill"):
        row = re.search(rf"<tr data-method='{method}'>(.*?)</tr>", table).group(1)
        vals = [float(r["value"]) for r in log if r["split"] == "val" and r["name"] == f"{method}.psnr"]
        assert float(re.search(r"data-metric='psnr' data-last='([^']+)'", row).group(1)) == vals[-1]
        assert f"{max(vals):.2f} (" in row
    best = summary["best"]
    assert f"psnr = {best['value']:.4f} at step {best['step']}" in text
    # curves: G and D losses per step and per epoch, validation of model and baselines
    assert "generator (G) losses per step" in text and "discriminator (D) losses per epoch" in text
    assert "data-series='g_total'" in text and "data-series='d_total'" in text
    assert "validation PSNR" in text and "data-series='bicubic'" in text
    # sample grids embedded (4 validations), the model card of the best checkpoint, the config
    assert len(re.findall(r"<figure data-step='(\d+)'><img src='data:image/png;base64,", text)) == 4
    assert "<th>arch</th><td>srresnet</td>" in text
    assert "name: patch_discriminator" in text
    # mrisr report RUN renders the same page
    capsys.readouterr()
    out = run.parent / "again.html"
    assert main(["report", str(run), "-o", str(out)]) == 0
    assert f"report: {out.resolve()}" in capsys.readouterr().out
    body = lambda t: t.split("<h2>Run</h2>", 1)[1]  # noqa: E731
    assert body(out.read_text()) == body(text)


def test_resuming_a_finished_run_keeps_its_report(runs: list[Path], capsys: pytest.CaptureFixture[str]):
    before = (runs[1] / "report.html").stat().st_mtime_ns
    assert main(["train", "--resume", str(runs[1])]) == 0
    assert f"report: {(runs[1] / 'report.html').resolve()}" in capsys.readouterr().out
    assert (runs[1] / "report.html").stat().st_mtime_ns == before


def test_compare_tabulates_runs_and_overlays_curves(runs: list[Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "compare.html"
    assert main(["compare", *map(str, runs), "-o", str(out)]) == 0
    assert f"report: {out.resolve()}" in capsys.readouterr().out
    text = out.read_text()
    _no_url(text)
    for run in runs:
        row = re.search(rf"<tr data-run='{run.name}'>(.*?)</tr>", text).group(1)
        vals = [float(r["value"]) for r in _log(run) if r["split"] == "val" and r["name"] == "model.psnr"]
        assert float(re.search(r"data-metric='psnr' data-final='([^']+)'", row).group(1)) == vals[-1]
        assert f"{max(vals):.2f} (" in row
        assert "<td class='num'>8</td>" in row  # steps
    # the hyper-parameter that differs is a column; one that is the same is not
    head = text.split("<table class='compare'>", 1)[1].split("</tr>", 1)[0]
    assert "<th>optim.generator.optimizer.lr</th>" in head and "model.generator.name" not in head
    assert text.count("data-series='lr1e-3'") == text.count("data-series='lr3e-4'") >= 4
    with pytest.raises(SystemExit):
        main(["compare", str(runs[0])])


def test_report_refuses_what_is_not_a_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["report", str(tmp_path)]) == 1
    assert "neither an evaluation folder" in capsys.readouterr().err


def test_sample_choice_flatten_and_differences(runs: list[Path]):
    rec = read_run(runs[0])
    assert [s for s, _ in rec.samples] == [2, 4, 6, 8] and chosen_samples(rec) == rec.samples
    rec.samples = [(s, p) for s in range(1, 21) for p in [rec.samples[0][1]]]
    rec.summary["best"]["step"] = 8
    chosen = [s for s, _ in chosen_samples(rec)]
    assert len(chosen) == MAX_GRIDS and chosen[0] == 1 and chosen[-1] == 20 and 8 in chosen
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "p": [{"x": 1}, {"x": 2}]}) == {"a.b": 1, "a.c": [1, 2], "p.0.x": 1,
                                                                               "p.1.x": 2}
    assert differing_params([{"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 0}]) == {"b.c": [2, 3],
                                                                                           "d": [None, 0]}


def test_line_chart_is_plain_svg():
    svg = line_chart({"a": [(0, 1.0), (1, 2.0), (2, float("nan"))], "b": [(0, 3.0)]}, title="t", xlabel="x",
                     ylabel="y", dashed=["b"])
    assert svg.startswith("<svg class='chart'") and svg.endswith("</svg>") and "http" not in svg
    assert svg.count("<polyline") == 2 and "stroke-dasharray" in svg
    assert svg.count("<circle") == 1  # the one-point series gets its dot
    assert "no values logged" in line_chart({"a": []}, title="t", xlabel="x", ylabel="y")
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(17.4, 24.2) == [18.0, 20.0, 22.0, 24.0]
